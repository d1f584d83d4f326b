using System.CommandLine;
using Workbench.Cli.Commands;

var root = new RootCommand("workbench: run real transformers, find what matters in them, drop layers and tokens, run them ternary.");
(string Name, Func<Command> Create)[] verbs =
[
    ("generate", GenerateCommand.Create),
    ("embed", EmbedCommand.Create),
    ("inspect", InspectCommand.Create),
    ("tour", TourCommand.Create),
    ("bench", BenchGemvCommand.CreateBenchGroup),
    ("notebooks", NotebooksCommand.Create),
    ("redundancy", RedundancyCommand.Create),
    ("drop", DropCommand.Create),
    ("pyramid-drop", PyramidDropCommand.Create),
    ("fastv", FastVCommand.Create),
    ("bitnet", BitNetCommand.Create),
    ("train", TrainCommand.Create),
    ("logits", LogitsCommand.Create),
    ("stack", StackCommand.Create),
];
// Start-up (issue 14): only the verb named first is built (building all fourteen verbs' options cost several ms of
// every start). Anything else (no verb, --help, a typo, a name listed wrongly here) builds them all, so help and the
// parser's suggestions see every verb.
Command? only = null;
foreach (var (name, create) in verbs)
    if (args.Length > 0 && args[0] == name) { only = create(); break; }
if (only is not null && only.Name == args[0]) root.Subcommands.Add(only);
else foreach (var (_, create) in verbs) root.Subcommands.Add(create());
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
