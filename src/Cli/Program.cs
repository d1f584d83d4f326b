using System.CommandLine;
using Workbench.Cli.Commands;

var root = new RootCommand("workbench: run real transformers, find what matters in them, drop layers and tokens, run them ternary.");
Command[] verbs =
[
    GenerateCommand.Create(),
    EmbedCommand.Create(),
    InspectCommand.Create(),
    TourCommand.Create(),
    BenchGemvCommand.CreateBenchGroup(),
    NotebooksCommand.Create(),
    PyramidDropCommand.Create(),
    FastVCommand.Create(),
];
foreach (var v in verbs) root.Subcommands.Add(v);
return root.Parse(args).Invoke();
