using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.Directives;
using Workbench.Engine.Models;
using Workbench.Engine.Requests;

namespace Workbench.Interactive.Directives;

/// <summary><c>#!model --name NAME|PATH [--as VAR]</c>: loads a model through ModelHub and shows its card.</summary>
public sealed class ModelCommand : KernelDirectiveCommand
{
    /// <summary>Bound from <c>--name</c>: a bundled model name or a model file/folder path.</summary>
    public string? Name { get; set; }

    /// <summary>Bound from <c>--as</c>: the C# variable that receives the LoadedModel (default <c>model</c>).</summary>
    public string? As { get; set; }
}

internal static class ModelDirective
{
    public const string Name = "#!model";

    public static void Add(Kernel kernel)
    {
        var directive = new KernelActionDirective(Name)
        {
            Description = $"Load a model ({string.Join(", ", ModelHub.BundledNames)}, or a path to a .bin, .gguf or Hugging Face folder) and show its card.",
            Parameters =
            {
                new KernelDirectiveParameter("--name", "bundled model name or path") { AllowImplicitName = true, Required = true },
                new KernelDirectiveParameter("--as", "C# variable for the loaded model (default: model)"),
            },
        };
        kernel.AddDirective<ModelCommand>(directive, (command, context) =>
        {
            var variable = string.IsNullOrWhiteSpace(command.As) ? "model" : command.As.Trim().Trim('"');
            if (!Microsoft.CodeAnalysis.CSharp.SyntaxFacts.IsValidIdentifier(variable))
                return Magic.RunAsync(context, Name, _ => throw new OptionException("--as", $"--as '{variable}' is not a C# identifier"));
            return Magic.RunAsync(context, Name,
                _ => Task.Run<object?>(() => ModelHub.Load(command.Name?.Trim().Trim('"') ?? throw new OptionException("--name", "--name is required"))),
                variable);
        });
    }

    internal static void RegisterFormatters()
    {
        Html.RegisterRecord<ModelCard>(title: c => $"Model card: {c.Name}");
        Microsoft.DotNet.Interactive.Formatting.Formatter.Register<LoadedModel>(
            (m, writer) => writer.Write(Html.Record(m.Card, $"{m.Name} ({m.GetType().Name})")),
            Microsoft.DotNet.Interactive.Formatting.HtmlFormatter.MimeType);
        Microsoft.DotNet.Interactive.Formatting.Formatter.SetPreferredMimeTypesFor(typeof(LoadedModel),
            Microsoft.DotNet.Interactive.Formatting.HtmlFormatter.MimeType);
    }
}
