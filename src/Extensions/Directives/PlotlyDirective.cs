using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.Directives;

namespace Workbench.Interactive.Directives;

/// <summary><c>#!workbench-plotly --embed once|always|never</c>: how charts get plotly.js.</summary>
public sealed class PlotlyCommand : KernelDirectiveCommand
{
    /// <summary>Bound from <c>--embed</c>.</summary>
    public string? Embed { get; set; }
}

/// <summary>What <c>#!workbench-plotly</c> displays and stores.</summary>
public sealed record PlotlySettings(PlotlyEmbed Embed, int PlotlyJsBytes);

internal static class PlotlyDirective
{
    public const string Name = "#!workbench-plotly";

    public static void Add(Kernel kernel)
    {
        var directive = new KernelActionDirective(Name)
        {
            Description = "How Plotly.NET charts get plotly.js offline: embedded in the first chart of the session (once, default), in every chart (always) or never.",
            Parameters =
            {
                new KernelDirectiveParameter("--embed", "once | always | never") { AllowImplicitName = true, Required = true },
            },
        };
        kernel.AddDirective<PlotlyCommand>(directive, (command, context) =>
            Magic.RunAsync(context, Name, _ => Task.FromResult<object?>(Apply(command.Embed, context.HandlingKernel))));
    }

    internal static PlotlySettings Apply(string? embed, Kernel? kernel)
    {
        var mode = Parse(embed);
        PlotlyFormatter.Embed = mode;
        // Choosing "once" again means "embed in the next chart": the page may have been reloaded.
        if (mode == PlotlyEmbed.Once && kernel is not null) PlotlyFormatter.ResetEmbedded(kernel);
        return new PlotlySettings(mode, System.Text.Encoding.UTF8.GetByteCount(PlotlyFormatter.PlotlyJs));
    }

    internal static PlotlyEmbed Parse(string? embed) => embed?.Trim().Trim('"').ToLowerInvariant() switch
    {
        "once" => PlotlyEmbed.Once,
        "always" => PlotlyEmbed.Always,
        "never" => PlotlyEmbed.Never,
        _ => throw new ArgumentException($"--embed must be once, always or never (got '{embed}')", "embed"),
    };
}
