using Workbench.Engine.Tensors;

namespace Workbench.Engine.Tests.Tensors;

/// <summary>Every instruction-set path this process supports, as theory data for the per-path kernel tests.</summary>
public static class IsaPaths
{
    public static TheoryData<IsaPath> All()
    {
        var d = new TheoryData<IsaPath>();
        foreach (var p in Isa.SupportedPaths) d.Add(p);
        return d;
    }
}
