namespace Workbench.Engine.Text;

/// <summary>A decoder's tokenizer: text to ids (with BOS), and ids back to the text a user reads.</summary>
public interface ITextTokenizer
{
    int VocabSize { get; }
    int Bos { get; }
    int Eos { get; }
    int[] Encode(string text, bool bos = true);
    /// <summary>The text printed for <paramref name="token"/> following <paramref name="prev"/> (llama2.c's decode + safe_printf).</summary>
    string DecodePiece(int prev, int token);
}

public static class TokenizerExtensions
{
    /// <summary>The text of a token sequence as llama2.c's run.c prints it: every piece after the first token.</summary>
    public static string Decode(this ITextTokenizer t, ReadOnlySpan<int> ids)
    {
        var sb = new System.Text.StringBuilder();
        for (int i = 1; i < ids.Length; i++) sb.Append(t.DecodePiece(ids[i - 1], ids[i]));
        return sb.ToString();
    }
}
