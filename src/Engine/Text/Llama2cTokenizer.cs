using System.Buffers.Binary;
using System.Text;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Text;

/// <summary>
/// The llama2.c tokenizer (tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length, bytes),
/// encoding and decoding exactly as run.c's <c>encode</c>, <c>decode</c> and <c>safe_printf</c> do.
/// </summary>
public sealed class Llama2cTokenizer : ITextTokenizer
{
    public const int Bos = 1, Eos = 2;
    private readonly byte[][] _pieces;
    private readonly float[] _scores;
    // Pieces as Latin-1 strings: one char per byte, so lookups compare raw bytes like run.c's strcmp.
    private readonly Dictionary<string, int> _lookup = new(StringComparer.Ordinal);

    public string Path { get; }
    public int VocabSize => _pieces.Length;
    public int BosId => Bos;
    public int EosId => Eos;
    int[] ITextTokenizer.Encode(string text, bool bos) => Encode(text, bos, eos: false);
    public int MaxTokenLength { get; }
    public ReadOnlySpan<byte> Piece(int id) => _pieces[CheckId(id)];
    public float Score(int id) => _scores[CheckId(id)];

    public Llama2cTokenizer(string path, int expectedVocabSize)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(expectedVocabSize);
        Path = path;
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer file not found: {path}", path);
        byte[] data = File.ReadAllBytes(path);
        ModelFormatException Bad(string field, long at, string problem) => new(path, field, at, problem);
        if (data.Length < 4) throw Bad("max_token_length", 0, $"file of {data.Length} bytes is too short for the header");
        MaxTokenLength = BinaryPrimitives.ReadInt32LittleEndian(data);
        if (MaxTokenLength <= 0 || MaxTokenLength > 1 << 16)
            throw Bad("max_token_length", 0, $"{MaxTokenLength} is not a plausible maximum piece length");
        // Each token needs at least 8 bytes, so the vocabulary size is bounded by the file before allocating.
        if ((long)expectedVocabSize * 8 > data.Length - 4)
            throw Bad("vocab", 4, $"the model's vocabulary of {expectedVocabSize} tokens cannot fit in a {data.Length}-byte tokenizer (at most {(data.Length - 4) / 8})");
        _pieces = new byte[expectedVocabSize][];
        _scores = new float[expectedVocabSize];
        int pos = 4;
        for (int i = 0; i < expectedVocabSize; i++)
        {
            if (data.Length - pos < 8)
                throw Bad($"token[{i}]", pos, $"file ends after {i} tokens but the model's vocabulary has {expectedVocabSize}");
            _scores[i] = BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(pos));
            int len = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(pos + 4));
            if (len < 0 || len > data.Length - pos - 8)
                throw Bad($"token[{i}].length", pos + 4, $"piece length {len} is negative or runs past the end of the file ({data.Length - pos - 8} bytes remain)");
            if (len > MaxTokenLength)
                throw Bad($"token[{i}].length", pos + 4, $"piece length {len} exceeds max_token_length {MaxTokenLength}");
            _pieces[i] = data.AsSpan(pos + 8, len).ToArray();
            _lookup.TryAdd(Encoding.Latin1.GetString(_pieces[i]), i);
            pos += 8 + len;
        }
        if (pos != data.Length)
            throw Bad("vocab", pos, $"{data.Length - pos} bytes remain after {expectedVocabSize} tokens: the tokenizer holds more tokens than the model's vocabulary");
    }

    private int CheckId(int id) =>
        (uint)id < (uint)_pieces.Length ? id : throw new ArgumentOutOfRangeException(nameof(id), id, $"token id outside 0..{_pieces.Length - 1}");

    private int Lookup(string latin1) => _lookup.TryGetValue(latin1, out int id) ? id : -1;

    /// <summary>run.c <c>encode(t, text, bos, eos)</c>: dummy prefix, codepoint pieces or byte fallback, then greedy best-score merges.</summary>
    public int[] Encode(string text, bool bos = true, bool eos = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        byte[] utf8 = Encoding.UTF8.GetBytes(text);
        int nul = Array.IndexOf(utf8, (byte)0); // C strings stop at NUL
        if (nul >= 0) utf8 = utf8[..nul];

        var tokens = new List<int>(utf8.Length + 3);
        if (bos) tokens.Add(Bos);
        if (utf8.Length > 0)
        {
            int prefix = Lookup(" ");
            if (prefix >= 0) tokens.Add(prefix); // run.c would push -1 for a vocabulary without " "; we skip it
        }
        int start = 0;
        for (int c = 0; c < utf8.Length; c++)
        {
            // A codepoint is a lead byte plus up to 3 continuation bytes (run.c's str_len < 4 rule).
            if ((utf8[c] & 0xC0) != 0x80) start = c;
            int len = c - start + 1;
            if (c + 1 < utf8.Length && (utf8[c + 1] & 0xC0) == 0x80 && len < 4) continue;
            int id = Lookup(Encoding.Latin1.GetString(utf8, start, len));
            if (id >= 0) tokens.Add(id);
            else for (int i = start; i <= c; i++) tokens.Add(utf8[i] + 3); // byte fallback: <0x00> is id 3
            start = c + 1;
        }
        // Same O(n^2) greedy loop as run.c; only the pair -> merged-piece lookups are memoised.
        // Keyed by both ids in one long: a Dictionary<(int, int), int> has no precompiled code and was jitted at every start.
        var pairs = new Dictionary<long, int>();
        while (true)
        {
            float bestScore = -1e10f;
            int bestId = -1, bestIdx = -1;
            for (int i = 0; i < tokens.Count - 1; i++)
            {
                long key = (long)tokens[i] << 32 | (uint)tokens[i + 1];
                if (!pairs.TryGetValue(key, out int id))
                    pairs[key] = id = Lookup(Encoding.Latin1.GetString(_pieces[tokens[i]]) + Encoding.Latin1.GetString(_pieces[tokens[i + 1]]));
                if (id != -1 && _scores[id] > bestScore) { bestScore = _scores[id]; bestId = id; bestIdx = i; }
            }
            if (bestIdx == -1) break;
            tokens[bestIdx] = bestId;
            tokens.RemoveAt(bestIdx + 1);
        }
        if (eos) tokens.Add(Eos);
        return [.. tokens];
    }

    /// <summary>run.c <c>decode(prev, token)</c>: the piece's bytes, leading space dropped after BOS, &lt;0xXX&gt; as the raw byte.</summary>
    public byte[] DecodePiece(int prevToken, int token)
    {
        ReadOnlySpan<byte> piece = Piece(token);
        if (prevToken == Bos && piece.Length > 0 && piece[0] == (byte)' ') piece = piece[1..];
        if (TryParseByte(piece, out byte b)) return [b];
        return piece.ToArray();
    }

    /// <summary>
    /// run.c <c>safe_printf</c>: nothing for an empty piece or a single byte that is neither printable nor whitespace
    /// (a stray byte of a multi-byte character), otherwise the bytes.
    /// </summary>
    public static ReadOnlySpan<byte> SafePiece(ReadOnlySpan<byte> piece)
    {
        if (piece.Length == 0) return [];
        if (piece.Length == 1)
        {
            byte c = piece[0];
            bool print = c is >= 0x20 and <= 0x7E, space = c is (>= 0x09 and <= 0x0D) or 0x20;
            if (!(print || space)) return [];
        }
        return piece;
    }

    /// <summary>The text run.c prints for a token sequence (each token decoded against its predecessor, then safe-printed).</summary>
    public string Decode(IReadOnlyList<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var bytes = new List<byte>();
        for (int i = 1; i < tokens.Count; i++) bytes.AddRange(SafePiece(DecodePiece(tokens[i - 1], tokens[i])));
        return Encoding.UTF8.GetString([.. bytes]);
    }

    /// <summary>sscanf(piece, "&lt;0x%02hhX&gt;"): "&lt;0x" then one or two hex digits.</summary>
    private static bool TryParseByte(ReadOnlySpan<byte> p, out byte value)
    {
        value = 0;
        if (p.Length < 4 || !p.StartsWith("<0x"u8)) return false;
        int v = 0, digits = 0;
        for (int i = 3; i < p.Length && digits < 2; i++, digits++)
        {
            int d = HexDigit(p[i]);
            if (d < 0) break;
            v = v * 16 + d;
        }
        if (digits == 0) return false;
        value = (byte)v;
        return true;
    }

    private static int HexDigit(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => c - '0',
        >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
        _ => -1,
    };
}
