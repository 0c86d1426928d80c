using LoPAProxy.Engine.Formats;
using LoPAProxy.Engine.Formats.Torch;
using LoPAProxy.Engine.Tensors;

namespace LoPAProxy.OpenAi;

/// <summary>
/// Decodes a prompt_embeds value exactly as vLLM does: strict standard base64 (no whitespace, not URL-safe)
/// → torch.load(weights_only=True) → a leading dimension of 1 squeezed, a larger one rejected → [rows, hidden]
/// with hidden equal to the model's → cast to float32. Non-finite values and empty tensors are rejected too.
/// </summary>
public static class PromptEmbeds
{
    public static (float[] Rows, int Count) Decode(string base64, int hiddenSize, string param)
    {
        if (!IsStrictBase64(base64)) throw ApiException.BadRequest("prompt_embeds is not strict standard base64 (no whitespace, '+/' alphabet, '=' padding)", param, "invalid_base64");
        byte[] bytes = Convert.FromBase64String(base64);
        TorchTensor t;
        try { t = TorchFile.LoadTensor(bytes, param); }
        catch (TensorFileException e) { throw ApiException.BadRequest($"prompt_embeds is not a torch.save'd tensor: {e.Problem}", param, "invalid_prompt_embeds"); }
        if (!t.StoredAs.IsFloat()) throw ApiException.BadRequest($"prompt_embeds must hold floating-point values, not {t.StoredAs}", param, "invalid_prompt_embeds");
        Tensor x = t.Values;
        if (x.Rank == 3)
        {
            if (x.Dim(0) != 1) throw ApiException.BadRequest($"prompt_embeds has a batch dimension of {x.Dim(0)}; send one tensor per prompt (a list) instead", param, "invalid_prompt_embeds");
            x = x.Select(0, 0);
        }
        if (x.Rank != 2) throw ApiException.BadRequest($"prompt_embeds must be [sequence, hidden] (or [1, sequence, hidden]), got [{string.Join(", ", x.Shape.ToArray())}]", param, "invalid_prompt_embeds");
        if (x.Dim(1) != hiddenSize) throw ApiException.BadRequest($"prompt_embeds hidden size is {x.Dim(1)}, the model's is {hiddenSize}", param, "hidden_size_mismatch");
        if (x.Dim(0) == 0) throw ApiException.BadRequest("prompt_embeds has no rows", param, "empty_prompt");
        float[] rows = x.ToArray();
        if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll<float>(rows)) throw ApiException.BadRequest("prompt_embeds contains NaN or infinite values", param, "non_finite_prompt_embeds");
        return (rows, x.Dim(0));
    }

    public static bool IsStrictBase64(string s)
    {
        if (s.Length == 0 || s.Length % 4 != 0) return false;
        int pad = s.EndsWith("==", StringComparison.Ordinal) ? 2 : s.EndsWith('=') ? 1 : 0;
        for (int i = 0; i < s.Length - pad; i++)
        {
            char c = s[i];
            if (!(char.IsAsciiLetterOrDigit(c) || c == '+' || c == '/')) return false;
        }
        return true;
    }
}
