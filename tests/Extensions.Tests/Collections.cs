namespace Workbench.Interactive.Tests;

/// <summary>Formatter registrations and Plotly embedding mode are process-wide state.</summary>
[CollectionDefinition("formatters", DisableParallelization = true)]
public class FormattersCollection;
