using System.CommandLine;
using Workbench.Engine.TokenDrop;

namespace Workbench.Cli.Commands;

/// <summary>
/// workbench fastv --model NAME|PATH --layer K --keep R [--rank attention|random|least] [--seed S] [--data PATH] [--json]
/// One drop after K layers keeping R of the droppable tokens, ranked by the query token's attention in layer K+1.
/// </summary>
public static class FastVCommand
{
    public static Command Create()
    {
        var o = new TokenDropOptions(fastV: true);
        var cmd = new Command("fastv", "FastV: one token drop after layer K keeping ratio R; report quality and FLOPs against the full model.");
        o.AddTo(cmd);
        cmd.SetAction(pr => TokenDropCli.Run(pr, o, () =>
        {
            int k = pr.GetValue(o.Layer) ?? throw new CliUsageException("--layer is required (e.g. --layer 2)");
            var keep = pr.GetValue(o.Keep) ?? throw new CliUsageException("--keep is required (e.g. --keep 0.5)");
            var s = PyramidSchedule.Parse(k.ToString(System.Globalization.CultureInfo.InvariantCulture), keep);
            if (s.KeepRatios.Count != 1) throw new CliUsageException("--keep: fastv takes one ratio");
            return ("fastv", s);
        }));
        return cmd;
    }
}
