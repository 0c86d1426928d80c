namespace LoPAProxy.Engine.Formats.Zip;

/// <summary>
/// CRC-32 (the zip/PNG polynomial) of a concatenation from the CRCs of its parts: crc(A‖B) = shift(crc(A), |B|) ⊕
/// crc(B), where the shift multiplies by x^(8|B|) modulo the polynomial — zlib's crc32_combine, done with the
/// GF(2) polynomial arithmetic it documents. Lets a stream know the CRC of data made of rows whose CRCs are already
/// known, without reading the rows.
/// </summary>
public static class Crc32Combine
{
    /// <summary>The polynomial, bit-reflected (the reflected form Crc32 uses).</summary>
    private const uint Polynomial = 0xEDB88320;

    /// <summary>x^(2^k) modulo the polynomial, k = 0…31 (reflected; x^0 is the top bit).</summary>
    private static readonly uint[] PowersOfTwo = MakePowersOfTwo();

    /// <summary>The operator that shifts a CRC over <paramref name="length"/> bytes: x^(8·length) mod P.</summary>
    public static uint ShiftOver(long length)
    {
        uint power = 1u << 31; // x^0
        int k = 3; // 8 = 2^3 bits per byte
        for (ulong n = (ulong)length; n != 0; n >>= 1, k++)
        {
            if ((n & 1) != 0) power = Multiply(PowersOfTwo[k & 31], power);
        }
        return power;
    }

    /// <summary>crc(A‖B) from crc(A), crc(B) and <see cref="ShiftOver"/>(|B|).</summary>
    public static uint Combine(uint first, uint second, uint shiftOverSecond) =>
        Multiply(shiftOverSecond, first) ^ second;

    /// <summary>a·b modulo the polynomial, both reflected.</summary>
    private static uint Multiply(uint a, uint b)
    {
        uint product = 0;
        for (uint bit = 1u << 31; bit != 0; bit >>= 1)
        {
            if ((a & bit) != 0) product ^= b;
            b = (b & 1) != 0 ? (b >> 1) ^ Polynomial : b >> 1;
        }
        return product;
    }

    private static uint[] MakePowersOfTwo()
    {
        var powers = new uint[32];
        powers[0] = 1u << 30; // x^1
        for (int k = 1; k < 32; k++) powers[k] = Multiply(powers[k - 1], powers[k - 1]);
        return powers;
    }
}
