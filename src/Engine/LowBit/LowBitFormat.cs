namespace Workbench.Engine.LowBit;

/// <summary>Weight storage formats compared by the low-bit benchmarks.</summary>
public enum LowBitFormat { F32, Int8, I2S, TL1, TL2 }
