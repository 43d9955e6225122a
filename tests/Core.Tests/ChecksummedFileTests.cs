using Storage.Core.Storage;

namespace Storage.Core.Tests;

public class ChecksummedFileTests
{
    [Fact]
    public void Round_trips_and_refuses_damage_with_a_clear_error()
    {
        var dir = Directory.CreateTempSubdirectory("ckf-").FullName;
        try
        {
            var path = Path.Combine(dir, "state");
            ChecksummedFile.Write(path, "TEST", 3, "hello"u8);
            var (payload, version) = ChecksummedFile.Read(path, "TEST");
            Assert.Equal("hello"u8.ToArray(), payload);
            Assert.Equal(3u, version);
            Assert.False(File.Exists(path + ".tmp"));

            var bytes = File.ReadAllBytes(path);
            bytes[13] ^= 1;
            File.WriteAllBytes(path, bytes);
            Assert.Contains("checksum mismatch", Assert.Throws<CorruptFileException>(() => ChecksummedFile.Read(path, "TEST")).Message);

            File.WriteAllBytes(path, bytes[..10]);
            Assert.Contains("shorter than a header", Assert.Throws<CorruptFileException>(() => ChecksummedFile.Read(path, "TEST")).Message);
            Assert.Contains("wrong magic", Assert.Throws<CorruptFileException>(() => { ChecksummedFile.Write(path, "ABCD", 1, "x"u8); ChecksummedFile.Read(path, "TEST"); }).Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
