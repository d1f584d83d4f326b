using Workbench.Engine.Models;

namespace Workbench.Engine.TokenDrop;

/// <summary>
/// Which tokens (by index in the original input) may never be dropped, and which one's attention ranks the rest.
/// ViT: CLS is both. Language models: the instruction (and BOS) are protected, the last token is the query.
/// </summary>
public sealed record TokenRoles
{
    public int QueryToken { get; }
    public IReadOnlySet<int> Protected { get; }

    public TokenRoles(int queryToken, IEnumerable<int> protectedTokens)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(queryToken);
        var set = new HashSet<int>(protectedTokens ?? throw new ArgumentNullException(nameof(protectedTokens))) { queryToken };
        if (set.Any(t => t < 0)) throw new ArgumentOutOfRangeException(nameof(protectedTokens), "token indices must be >= 0");
        QueryToken = queryToken;
        Protected = set;
    }

    /// <summary>CLS (token 0) is the query and the only protected token.</summary>
    public static TokenRoles Cls { get; } = new(0, [0]);

    /// <summary>A prompt of <paramref name="length"/> tokens whose tokens [contextStart, contextEnd) are droppable; the rest are protected and the last token queries.</summary>
    public static TokenRoles Prompt(int length, int contextStart, int contextEnd)
    {
        if (contextStart < 0 || contextEnd > length || contextStart >= contextEnd)
            throw new ArgumentException($"droppable range [{contextStart}, {contextEnd}) must be a non-empty part of the {length} tokens", nameof(contextEnd));
        if (contextEnd == length) throw new ArgumentException("the last token is the query and cannot be droppable", nameof(contextEnd));
        return new TokenRoles(length - 1, Enumerable.Range(0, length).Where(t => t < contextStart || t >= contextEnd));
    }

    /// <summary>Number of droppable tokens in a sequence of <paramref name="length"/>; throws if there are none.</summary>
    public int Droppable(int length)
    {
        if (QueryToken >= length) throw new ArgumentOutOfRangeException(nameof(QueryToken), QueryToken, $"query token outside the {length} tokens");
        int n = length - Protected.Count(t => t < length);
        if (n <= 0) throw new ArgumentException($"all {length} tokens are protected: there are no droppable tokens", "protectedTokens");
        return n;
    }
}

/// <summary>One boundary as it happened: the droppable tokens that entered it, their scores, which survived.</summary>
public sealed record DropStage(int Boundary, int RankLayer, int[] Candidates, float[] Scores, int[] Kept, int[] Dropped);

/// <summary>
/// Drops tokens at a schedule's boundaries; give <see cref="Selector"/> to a ForwardContext. At boundary b it ranks the
/// droppable rows by the query row's attention in block b (the block's attn.pattern, via QueryAttention), keeps the top k (ties: earlier token
/// first) plus every protected row, in their original order and with their original positions.
/// Records what happened in <see cref="Stages"/>. One instance per sequence; not thread-safe.
/// </summary>
public sealed class TokenDropper
{
    private readonly ITransformerModel _model;
    private readonly List<DropStage> _stages = [];
    private readonly Random _rng;

    public PyramidSchedule Schedule { get; }
    public TokenRoles Roles { get; }
    public DropRanking Ranking { get; }
    public IReadOnlyList<DropStage> Stages => _stages;

    public TokenDropper(ITransformerModel model, PyramidSchedule schedule, TokenRoles roles, DropRanking ranking = DropRanking.Attention, int seed = 0)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        Schedule = schedule ?? throw new ArgumentNullException(nameof(schedule));
        Roles = roles ?? throw new ArgumentNullException(nameof(roles));
        if (!Enum.IsDefined(ranking)) throw new ArgumentOutOfRangeException(nameof(ranking), ranking, "unknown ranking");
        schedule.Validate(model.Config.Layers);
        Ranking = ranking;
        _rng = new Random(seed);
    }

    public TokenSelector Selector => Select;

    public int[]? Select(int layer, SequenceState state)
    {
        int stage = -1;
        for (int i = 0; i < Schedule.Boundaries.Count; i++) if (Schedule.Boundaries[i] == layer + 1) stage = i;
        if (stage < 0) return null;
        int boundary = layer + 1;

        var tokens = state.TokenIndex;
        int queryRow = Array.IndexOf(tokens, Roles.QueryToken, 0, state.Rows);
        if (queryRow < 0) throw new InvalidOperationException($"query token {Roles.QueryToken} is not in the sequence");
        var candidates = new List<int>();
        for (int r = 0; r < state.Rows; r++) if (!Roles.Protected.Contains(tokens[r])) candidates.Add(r);
        if (candidates.Count == 0) throw new ArgumentException("there are no droppable tokens at boundary " + boundary, "roles");

        int k = Math.Min(candidates.Count, PyramidSchedule.KeepCount(candidates.Count, Schedule.KeepRatios[stage]));
        float[] scores;
        if (Ranking == DropRanking.Random)
            scores = candidates.Select(_ => (float)_rng.NextDouble()).ToArray();
        else
        {
            var att = _model.QueryAttention(boundary, state, queryRow);
            scores = candidates.Select(r => att[r]).ToArray();
        }
        // Best first; LeastAttended flips the order. Ties go to the earlier token so results are deterministic.
        int sign = Ranking == DropRanking.LeastAttended ? -1 : 1;
        var order = Enumerable.Range(0, candidates.Count)
            .OrderByDescending(i => sign * scores[i]).ThenBy(i => i).Take(k).ToHashSet();

        var keepRows = new List<int>(state.Rows);
        var kept = new List<int>(k);
        var dropped = new List<int>(candidates.Count - k);
        for (int r = 0, c = 0; r < state.Rows; r++)
        {
            bool isCandidate = c < candidates.Count && candidates[c] == r;
            if (!isCandidate) { keepRows.Add(r); continue; }
            if (order.Contains(c)) { keepRows.Add(r); kept.Add(tokens[r]); }
            else dropped.Add(tokens[r]);
            c++;
        }
        _stages.Add(new DropStage(boundary, boundary, candidates.Select(r => tokens[r]).ToArray(), scores, kept.ToArray(), dropped.ToArray()));
        return keepRows.ToArray();
    }
}
