namespace Workbench.Engine.Text;

/// <summary>A decoder's tokenizer: text to ids (with BOS), and ids back to the text a user reads.</summary>
public interface ITextTokenizer
{
    int VocabSize { get; }
    int BosId { get; }
    int EosId { get; }
    int[] Encode(string text, bool bos = true);
    /// <summary>The text of a token sequence as llama2.c's run.c prints it: every piece after the first token.</summary>
    string Decode(IReadOnlyList<int> ids);
}
