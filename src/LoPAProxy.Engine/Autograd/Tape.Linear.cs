using LoPAProxy.Engine.Blas;

namespace LoPAProxy.Engine.Autograd;

public sealed partial class Tape
{
    /// <summary>The GEMM backend every op uses (forward and backward).</summary>
    public GemmBackend Gemm { get; init; } = Blas.Gemm.Default;

    /// <summary>
    /// c [n, m] = a [n, k] · b [k, m], or a · bᵀ with b [m, k] when <paramref name="transB"/>.
    /// Backward: da += dc · op(b)ᵀ; db += aᵀ · dc (or dcᵀ · a when transposed).
    /// </summary>
    public Variable MatMul(Variable a, Variable b, bool transB = false)
    {
        int n = a.Rows, k = a.Cols;
        int bk = transB ? b.Cols : b.Rows, m = transB ? b.Rows : b.Cols;
        if (bk != k) throw new ArgumentException($"matmul: [{n}, {k}] · {(transB ? "ᵀ" : "")}[{string.Join(", ", b.Shape)}] do not chain");
        var c = new float[n * m];
        Gemm.Sgemm(false, transB, n, m, k, 1f, a.Value, k, b.Value, transB ? k : m, 0f, c, m);
        return Record(c, new[] { n, m }, new[] { a, b }, dc =>
        {
            if (a.RequiresGrad)
                Gemm.Sgemm(false, !transB, n, k, m, 1f, dc, m, b.Value, transB ? k : m, 1f, a.GradBuffer(), k);
            if (b.RequiresGrad)
            {
                if (transB) Gemm.Sgemm(true, false, m, k, n, 1f, dc, m, a.Value, k, 1f, b.GradBuffer(), k);
                else Gemm.Sgemm(true, false, k, m, n, 1f, a.Value, k, dc, m, 1f, b.GradBuffer(), m);
            }
        });
    }

    /// <summary>PyTorch's Linear: y [n, out] = x [n, in] · Wᵀ (+ bias [out]), W [out, in].</summary>
    public Variable Linear(Variable x, Variable weight, Variable? bias = null)
    {
        Variable y = MatMul(x, weight, transB: true);
        return bias is null ? y : AddBias(y, bias);
    }
}
