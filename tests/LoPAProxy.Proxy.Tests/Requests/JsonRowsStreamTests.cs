using System.Text;
using System.Text.Json;
using LoPAProxy.Proxy.Requests;

namespace LoPAProxy.Proxy.Tests.Requests;

/// <summary>SGLang's rows, streamed: the same text System.Text.Json's serializer writes for the whole array.</summary>
public class JsonRowsStreamTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 7)]
    [InlineData(41, 64)]
    public void The_streamed_text_is_the_serializers_and_its_length_is_known_first(int rows, int dim)
    {
        var random = new Random(rows * 100 + dim);
        float[][] values = Enumerable.Range(0, rows).Select(_ => Enumerable.Range(0, dim)
            .Select(_ => (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-8, 8)))).ToArray()).ToArray();
        values[0][0] = -0f;
        values[^1][^1] = float.Epsilon;
        string expected = JsonSerializer.Serialize(values);
        using var stream = new JsonRowsStream(rows, dim, (row, destination) => values[row].CopyTo(destination));
        Assert.Equal(Encoding.UTF8.GetByteCount(expected), stream.Length);
        var read = new MemoryStream();
        var buffer = new byte[5]; // small reads cross every boundary
        for (int n; (n = stream.Read(buffer)) > 0;) read.Write(buffer, 0, n);
        Assert.Equal(expected, Encoding.UTF8.GetString(read.ToArray()));
        Assert.Equal(0, stream.Read(buffer));
    }

    [Fact]
    public void Rows_whose_length_is_known_are_not_formatted_to_size_the_stream_and_the_text_is_the_same()
    {
        var random = new Random(9);
        float[][] values = Enumerable.Range(0, 30).Select(_ => Enumerable.Range(0, 50)
            .Select(_ => (float)(random.NextDouble() - 0.5)).ToArray()).ToArray();
        string expected = JsonSerializer.Serialize(values);
        int[] lengths = values.Select(row => JsonRowsStream.TextLength(row)).ToArray();
        Assert.Equal(lengths, values.Select(row => Encoding.UTF8.GetByteCount(JsonSerializer.Serialize(row))));
        int filled = 0;
        using var stream = new JsonRowsStream(30, 50, (row, destination) =>
        {
            filled++;
            values[row].CopyTo(destination);
        }, row => row < 3 ? null : lengths[row]);
        Assert.Equal(3, filled);
        Assert.Equal(Encoding.UTF8.GetByteCount(expected), stream.Length);
        Assert.Equal(expected, new StreamReader(stream).ReadToEnd());
    }

    [Fact]
    public void A_json_value_placeholder_is_replaced_quotes_and_all()
    {
        byte[] json = Encoding.UTF8.GetBytes("{\"input_embeds\":\"p-1\",\"other\":\"p-1x\"}");
        using var rows = new JsonRowsStream(1, 2, (_, destination) => new float[] { 1.5f, -2 }.CopyTo(destination));
        using StreamedBody body = StreamedBody.Of(json, [new EmbeddedText("p-1", rows, IsJsonValue: true)]);
        string text = new StreamReader(body).ReadToEnd();
        Assert.Equal("{\"input_embeds\":[[1.5,-2]],\"other\":\"p-1x\"}", text);
        Assert.Equal(Encoding.UTF8.GetByteCount(text), body.Length);
    }
}
