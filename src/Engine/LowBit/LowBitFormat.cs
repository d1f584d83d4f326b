namespace Workbench.Engine.LowBit;

/// <summary>Weight storage formats compared by the low-bit benchmarks.</summary>
/// <remarks>F16, BF16, Q8_0, Q4_0, Q5_0, Q4_1, Q5_1 and the K types Q2_K ... Q6_K are checkpoint types kept as stored (<see cref="StoredMatrix"/>): fp32 accumulation, no packer.</remarks>
public enum LowBitFormat { F32, Int8, I2S, TL1, TL2, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K, Q2_K, Q3_K, Q4_1, Q5_1 }
