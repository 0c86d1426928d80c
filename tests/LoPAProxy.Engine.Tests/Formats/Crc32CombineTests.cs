using System.IO.Hashing;
using LoPAProxy.Engine.Formats.Zip;

namespace LoPAProxy.Engine.Tests.Formats;

/// <summary>The CRC of a concatenation from its parts' CRCs equals System.IO.Hashing's CRC of the whole.</summary>
public class Crc32CombineTests
{
    [Theory]
    [InlineData(0, 0)]
    [InlineData(0, 17)]
    [InlineData(1, 1)]
    [InlineData(5, 8192)]
    [InlineData(8192, 3)]
    [InlineData(100_000, 65_537)]
    public void Combining_two_parts_gives_the_crc_of_their_concatenation(int firstLength, int secondLength)
    {
        var rng = new Random(firstLength * 7 + secondLength);
        byte[] first = new byte[firstLength], second = new byte[secondLength];
        rng.NextBytes(first);
        rng.NextBytes(second);
        uint combined = Crc32Combine.Combine(Crc32.HashToUInt32(first), Crc32.HashToUInt32(second),
            Crc32Combine.ShiftOver(secondLength));
        Assert.Equal(Crc32.HashToUInt32(first.Concat(second).ToArray()), combined);
    }

    [Fact]
    public void Many_equal_length_rows_combine_with_one_shift_operator()
    {
        var rng = new Random(3);
        byte[][] rows = Enumerable.Range(0, 300).Select(_ =>
        {
            var row = new byte[8192];
            rng.NextBytes(row);
            return row;
        }).ToArray();
        uint shift = Crc32Combine.ShiftOver(8192), crc = 0;
        foreach (byte[] row in rows) crc = Crc32Combine.Combine(crc, Crc32.HashToUInt32(row), shift);
        Assert.Equal(Crc32.HashToUInt32(rows.SelectMany(r => r).ToArray()), crc);
    }
}
