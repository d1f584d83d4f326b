using System.Globalization;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.Directives;
using Workbench.Engine.Requests;
using Workbench.Engine.Stacking;

namespace Workbench.Interactive.Directives;

/// <summary>
/// <c>#!stack</c>: the options of <c>workbench stack</c> (bound by name) plus <c>--as</c>. The magic also measures
/// every combination of the techniques, for the frontier chart.
/// </summary>
public sealed class StackCommand : KernelDirectiveCommand
{
    public string? Model { get; set; }
    public string? Ternary { get; set; }
    public string? DropAttention { get; set; }
    public string? Pyramid { get; set; }
    public string? Keep { get; set; }
    public string? Format { get; set; }
    /// <summary><c>--as</c>: the C# variable that receives the result (default <c>stack</c>).</summary>
    public string? As { get; set; }
}

internal static class StackDirective
{
    public const string Name = "#!stack";

    public static void Add(Kernel kernel)
    {
        var d = new KernelActionDirective(Name)
        {
            Description = "Stack attention drop, PyramidDrop and ternary kernels on one decoder: quality and cost after every step, the waterfall and the frontier.",
            Parameters =
            {
                new KernelDirectiveParameter("--model", "the fp decoder: austen-16L, stories260K, ... or a path") { Required = true },
                new KernelDirectiveParameter("--ternary", "its ternary twin (default: austen-16L-ternary for austen-16L, else post-training quantization)"),
                new KernelDirectiveParameter("--drop-attention", "K: drop the K least important attention layers") { Required = true, TypeHint = "number" },
                new KernelDirectiveParameter("--pyramid", "PyramidDrop stage boundaries, e.g. 4,8,12"),
                new KernelDirectiveParameter("--keep", "keep ratio per stage, e.g. 0.5"),
                new KernelDirectiveParameter("--format", "i2s (default) | tl2"),
                new KernelDirectiveParameter("--as", "C# variable for the result (default: stack)"),
            },
        };
        kernel.AddDirective<StackCommand>(d, Handle);
    }

    private static Task Handle(StackCommand command, KernelInvocationContext context)
    {
        StackRequest request;
        string variable;
        try { (request, variable) = Parse(command); }
        catch (ArgumentException e) { return Magic.RunAsync(context, Name, _ => throw e); }
        return Magic.RunAsync(context, Name, token => Task.Run<object?>(() =>
        {
            var bar = LiveProgress.Start(context, "stack", 5);
            return request.Run(Magic.Bar(bar), token);
        }, token), variable);
    }

    /// <summary>The engine request the magic's options give (validated), and the variable that receives the result.</summary>
    internal static (StackRequest Request, string Variable) Parse(StackCommand c)
    {
        var request = new StackRequest
        {
            Model = Clean(c.Model), Ternary = Clean(c.Ternary),
            DropAttention = Workbench.Engine.Requests.Parse.Int(Clean(c.DropAttention), "--drop-attention"),
            Pyramid = Clean(c.Pyramid), Keep = Clean(c.Keep), Format = Clean(c.Format), Combinations = true,
        };
        request.Validate();
        var variable = Clean(c.As) ?? "stack";
        if (!Microsoft.CodeAnalysis.CSharp.SyntaxFacts.IsValidIdentifier(variable))
            throw new OptionException("--as", $"--as '{variable}' is not a C# identifier");
        return (request, variable);
    }

    private static string? Clean(string? s)
    {
        var t = s?.Trim().Trim('"').Trim();
        return string.IsNullOrEmpty(t) ? null : t;
    }
}
