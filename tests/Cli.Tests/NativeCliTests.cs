using System.Text.Json;

namespace Workbench.Cli.Tests;

/// <summary>
/// bin/workbench, the Native AOT build (./install.sh), against the JIT build of the same sources: the same bytes out,
/// the same error contract. CI builds the binary before the tests (.ci/run), so there it must be present; elsewhere
/// these tests check it when it has been built.
/// </summary>
public class NativeCliTests
{
    private static bool Present()
    {
        if (File.Exists(CliRunner.NativeBinary)) return true;
        Assert.True(Environment.GetEnvironmentVariable("CI") is not { Length: > 0 },
            $"{CliRunner.NativeBinary} is missing: .ci/run builds it with ./install.sh before the tests");
        return false;
    }

    [Theory]
    [InlineData("generate", "--model", "stories260K", "--prompt", "Once upon a time", "--steps", "512", "--temperature", "0")]
    [InlineData("generate", "--model", "babyllama", "--prompt", "The little dog", "--steps", "64", "--temperature", "0.8", "--seed", "7")]
    [InlineData("logits", "--model", "stories260K", "--tokens", "1,403,407,261", "--json")]
    [InlineData("inspect", "--model", "austen-16L-ternary", "--json")]
    // The native binary runs without ICU (InvariantGlobalization): the WordPiece normalization of accented text must not change.
    [InlineData("embed", "--model", "minilm", "Café résumé naïve", "Crème brûlée à l'École", "--json")]
    public void Native_binary_prints_what_the_jit_build_prints(params string[] args)
    {
        if (!Present()) return;
        var (jitExit, jitOut, jitErr) = CliRunner.Run(args);
        var (exit, stdout, stderr) = CliRunner.RunNative(args);
        Assert.True(jitExit == 0, jitErr);
        Assert.True(exit == 0, stderr);
        Assert.True(stdout.Length > 40, stdout);
        // inspect names the model file it read: the JIT build's copy beside workbench.dll, the native one's beside bin/workbench.
        Assert.Equal(jitOut.Replace(AppContext.BaseDirectory, "<home>/"), stdout.Replace(Path.Combine(RepoFiles.Root, "bin") + "/", "<home>/"));
    }

    [Fact]
    public void Native_generate_json_has_the_jit_builds_tokens()
    {
        if (!Present()) return;
        string[] args = ["generate", "--model", "stories260K", "--prompt", "Once upon a time", "--steps", "200", "--json"];
        var (_, jitOut, _) = CliRunner.Run(args);
        var (exit, stdout, stderr) = CliRunner.RunNative(args);
        Assert.True(exit == 0, stderr);
        using var jit = JsonDocument.Parse(jitOut);
        using var native = JsonDocument.Parse(stdout);
        Assert.Equal(201, native.RootElement.GetProperty("tokens").GetArrayLength());
        Assert.Equal(jit.RootElement.GetProperty("tokens").ToString(), native.RootElement.GetProperty("tokens").ToString());
        Assert.Equal(jit.RootElement.GetProperty("text").GetString(), native.RootElement.GetProperty("text").GetString());
        Assert.True(native.RootElement.GetProperty("decode_tokens_per_s").GetDouble() > 0);
    }

    [Theory]
    [InlineData("generate", "--model", "stories260K", "--bogus")]
    [InlineData("generate", "--model", "stories260K", "--steps", "0")]
    [InlineData("generate", "--model", "no-such-model.bin", "--steps", "4")]
    [InlineData("bench", "gemv", "--format", "nope", "--rows", "64", "--cols", "64")]
    public void Native_bad_input_is_exit_2_and_one_line_as_in_the_jit_build(params string[] args)
    {
        if (!Present()) return;
        var (exit, stdout, stderr) = CliRunner.RunNative(args);
        var (jitExit, _, jitErr) = CliRunner.Run(args);
        Assert.Equal(2, exit);
        Assert.Equal(2, jitExit);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("workbench", line);
        Assert.Equal(jitErr, stderr);
    }
}
