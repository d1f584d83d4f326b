using Workbench.Engine.Models;
using Workbench.Engine.Requests;

namespace Workbench.Engine.Redundancy;

/// <summary>
/// What layer dropping judges a text model by, asked of the loaded model's task rather than its architecture:
/// a model whose readout is next-token logits (a decoder) is judged by KL, top-1 agreement and perplexity on packed
/// token sequences; a sentence encoder by embedding cosine and the rank correlation of pairwise similarities on
/// separate sentences. <see cref="Tokenize"/> is the loaded model's own tokenizer (a decoder's adds BOS).
/// </summary>
public sealed record TextTask(LoadedModel Loaded, bool NextToken, Func<string, int[]> Tokenize) : ModelTask(Loaded)
{
    /// <summary>Calibration and evaluation text is packed into full-length sequences for next-token models only.</summary>
    public bool Pack => NextToken;

    public override string Kind => NextToken ? "decoder" : "encoder";

    /// <summary>The task of a loaded text model; anything else is refused, naming <paramref name="option"/>.</summary>
    public static new TextTask Of(LoadedModel model, string option = "--model") => model switch
    {
        Decoder d => new TextTask(d, NextToken: true, t => d.Tokenizer.Encode(t)),
        Encoder e => new TextTask(e, NextToken: false, e.Tokenizer.Encode),
        null => throw new ArgumentNullException(nameof(model)),
        _ => throw new OptionException(option,
            $"{option} '{model.Name}' is a {model.GetType().Name}: this needs a text decoder or encoder (stories260K, babyllama, minilm)"),
    };
}
