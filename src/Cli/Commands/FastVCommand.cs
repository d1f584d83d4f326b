using System.CommandLine;
using Workbench.Engine.TokenDrop;

namespace Workbench.Cli.Commands;

/// <summary>
/// workbench fastv --model NAME|PATH --layer K --keep R [--rank attention|random|least] [--seed S] [--data PATH] [--limit N] [--json]
/// One drop after K layers keeping R of the droppable tokens, ranked by the query token's attention in layer K+1.
/// </summary>
public static class FastVCommand
{
    public static Command Create() => TokenDropCli.Create(TokenDropMethod.FastV, "fastv",
        "FastV: one token drop after layer K keeping ratio R; report quality and FLOPs against the full model.");
}
