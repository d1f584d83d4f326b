using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.Directives;
using Microsoft.DotNet.Interactive.Events;
using Workbench.Engine.Formats;

namespace Workbench.Interactive.Tests;

/// <summary>The shared handler shape (Magic.RunAsync) with a test directive, as #!redundancy etc. will use it.</summary>
[Collection("formatters")]
public class MagicTests
{
    public sealed class EchoCommand : KernelDirectiveCommand
    {
        public string? File { get; set; }
        public int Times { get; set; }
    }

    private static void AddEcho(Kernel kernel) =>
        kernel.AddDirective<EchoCommand>(
            new KernelActionDirective("#!echo-test")
            {
                Parameters =
                {
                    new KernelDirectiveParameter("--file", "a file") { Required = true },
                    new KernelDirectiveParameter("--times", "count") { TypeHint = "number" },
                },
            },
            (cmd, ctx) => Magic.RunAsync(ctx, "#!echo-test", _ =>
            {
                if (cmd.Times < 1) throw new ArgumentOutOfRangeException("times", cmd.Times, "must be >= 1");
                if (!System.IO.File.Exists(cmd.File)) throw new FileNotFoundException($"no such file: {cmd.File}", cmd.File);
                var bytes = System.IO.File.ReadAllBytes(cmd.File!);
                if (bytes.Length < 4) throw new ModelFormatException(cmd.File!, "magic", 0, "file shorter than its 4-byte header");
                return Task.FromResult<object?>(string.Concat(Enumerable.Repeat(bytes.Length.ToString(), cmd.Times)));
            }, variable: "echoResult"));

    [Fact]
    public async Task Results_are_displayed_stored_in_Last_and_shared_as_a_csharp_variable()
    {
        using var k = new TestKernel();
        AddEcho(k.CSharp);
        var file = Path.GetTempFileName();
        File.WriteAllBytes(file, new byte[12]);
        var r = await k.SubmitAsync($"#!echo-test --file \"{file}\" --times 2");
        r.AssertSucceeded();
        Assert.Contains(r.Formatted(), v => v.Value.Contains("1212"));
        Assert.Equal("1212", Last.Value);
        Assert.Equal("#!echo-test", Last.Directive);
        var read = await k.SubmitAsync("echoResult.Length");
        read.AssertSucceeded();
        Assert.Contains(read.Events.OfType<ReturnValueProduced>(), e => Equals(e.Value, 4));
    }

    [Theory]
    [InlineData("missing", 1, "no such file")]
    [InlineData("short", 1, "field 'magic' at offset 0: file shorter than its 4-byte header")]
    [InlineData("ok", 0, "must be >= 1")]
    public async Task Engine_errors_become_a_message_in_the_cell_and_the_kernel_stays_alive(string which, int times, string expected)
    {
        using var k = new TestKernel();
        AddEcho(k.CSharp);
        var file = which == "missing" ? "/nonexistent/model.bin" : Path.GetTempFileName();
        if (which == "short") File.WriteAllBytes(file, new byte[2]);
        if (which == "ok") File.WriteAllBytes(file, new byte[8]);

        var r = await k.SubmitAsync($"#!echo-test --file \"{file}\" --times {times}");
        var failure = r.Failure();
        Assert.NotNull(failure);
        Assert.Contains(expected, failure!.Message);
        Assert.Null(failure.Exception); // a message, not a stack trace
        Assert.Contains("workbench-error", r.Html());
        Assert.IsType<WorkbenchError>(Last.Value);

        (await k.SubmitAsync("var alive = 40 + 2;")).AssertSucceeded();
    }
}
