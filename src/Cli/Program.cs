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
    RedundancyCommand.Create(),
    DropCommand.Create(),
    PyramidDropCommand.Create(),
    FastVCommand.Create(),
    BitNetCommand.Create(),
    TrainCommand.Create(),
    LogitsCommand.Create(),
    StackCommand.Create(),
];
foreach (var v in verbs) root.Subcommands.Add(v);
var parsed = root.Parse(args);
// Bad options are one clear line and exit code 2, like every other bad input (the parser's own default is 1 plus help).
if (parsed.Errors.Count > 0)
{
    foreach (var e in parsed.Errors.Take(1)) Console.Error.WriteLine($"workbench: error: {e.Message} (see 'workbench {string.Join(' ', args.Take(1))} --help')");
    return 2;
}
// Every verb runs its body through CliHelpers.Run; this is the net under it: a bad-input error that escapes a verb is
// still one line and exit 2 (System.CommandLine's own handler would print a stack trace and exit 1).
try
{
    return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (Workbench.Cli.CliHelpers.IsBadInput(e))
{
    Console.Error.WriteLine("workbench: error: " + Workbench.Cli.CliHelpers.OneLine(e, parsed));
    return Workbench.Cli.CliHelpers.ExitBadInput;
}
