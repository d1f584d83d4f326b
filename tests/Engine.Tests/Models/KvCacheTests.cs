using Workbench.Engine.Models;

namespace Workbench.Engine.Tests.Models;

public class KvCacheTests
{
    /// <summary>The transposed copies follow the entries as they arrive (in batches), and start over after Clear.</summary>
    [Fact]
    public void Transposed_copies_follow_appended_entries()
    {
        int kv = 6, capacity = 21;
        var cache = new KvCache(2, capacity, kv);
        var lc = cache.Layer(1);
        Assert.Equal(32, lc.TransposedStride);
        void Append(int rows, int first)
        {
            int start = lc.Append(rows, Enumerable.Range(first, rows).ToArray());
            for (int j = start; j < start + rows; j++)
                for (int t = 0; t < kv; t++) { lc.Keys[j * kv + t] = 100 * j + t; lc.Values[j * kv + t] = -(100 * j + t); }
        }
        void Check()
        {
            var (kt, vt) = lc.Transposed();
            for (int j = 0; j < lc.Count; j++)
                for (int t = 0; t < kv; t++)
                {
                    Assert.Equal(lc.Keys[j * kv + t], kt[t * lc.TransposedStride + j]);
                    Assert.Equal(lc.Values[j * kv + t], vt[t * lc.TransposedStride + j]);
                }
        }
        Append(5, 0); Check();
        Append(1, 5); Append(1, 6); Check();
        lc.Clear();
        Append(3, 0);
        for (int j = 0; j < 3; j++) for (int t = 0; t < kv; t++) lc.Keys[j * kv + t] += 0.5f; // new entries after Clear
        Check();
        Assert.False(cache.IsAllocated(0));
    }

    /// <summary>
    /// Decoding after a prefill of the first tokens (the transposed copies catch up on many entries at once) matches
    /// decoding every token one at a time (they follow one entry per step), within float rounding: the prefill's GEMM
    /// sums its products in another order than the one-row kernels.
    /// </summary>
    [Fact]
    public void Decoding_after_a_prefill_matches_decoding_token_by_token()
    {
        var dec = ModelHub.LoadDecoder("stories260K");
        var ids = dec.Tokenizer.Encode("Once upon a time, there was a little girl", bos: true);
        int half = ids.Length / 2;
        var a = new ForwardContext { Cache = KvCache.For(dec.Config, ids.Length) };
        var b = new ForwardContext { Cache = KvCache.For(dec.Config, ids.Length) };
        dec.Model.Forward(ids.AsSpan(0, half), 0, a);
        for (int p = 0; p < half; p++) dec.Model.Forward([ids[p]], p, b);
        for (int p = half; p < ids.Length; p++)
        {
            var (la, _) = dec.Model.Forward([ids[p]], p, a);
            var (lb, _) = dec.Model.Forward([ids[p]], p, b);
            for (int j = 0; j < la.Length; j++) Assert.Equal(la[j], lb[j], 1e-4f);
        }
        Assert.Equal(ids.Length, a.Cache.Count(0));
        Assert.Equal(ids.Length, b.Cache.Count(4));
    }
}
