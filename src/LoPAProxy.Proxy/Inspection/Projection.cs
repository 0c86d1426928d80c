namespace LoPAProxy.Proxy.Inspection;

/// <summary>Points on the first two principal components, and the share of the variance each explains.</summary>
public sealed record ProjectionResult(
    [property: System.Text.Json.Serialization.JsonPropertyName("x")] double[] X,
    [property: System.Text.Json.Serialization.JsonPropertyName("y")] double[] Y,
    [property: System.Text.Json.Serialization.JsonPropertyName("explained")] double[] Explained);

/// <summary>
/// PCA of n row vectors (n small, each possibly long: a soft prompt flattened, m·d values) through the n × n Gram
/// matrix of the centred rows: G = Xc·Xcᵀ = U·S²·Uᵀ, so the scores on component k are U[:, k]·s_k, without ever
/// forming the (m·d)² covariance. The eigen-decomposition is cyclic Jacobi (exact to rounding for symmetric G);
/// each component's sign is fixed so its largest score is positive, so the picture is deterministic.
/// </summary>
public static class Projection
{
    /// <summary>The work bound (n² · length multiply-adds) callers check before asking.</summary>
    public static long Cost(int n, int length) => (long)n * n * length;

    /// <param name="rows">n rows of <paramref name="length"/> values, row-major.</param>
    public static ProjectionResult Of(ReadOnlySpan<float> rows, int n, int length)
    {
        double[,] gram = CentredGram(rows, n, length);
        double trace = 0;
        for (int i = 0; i < n; i++) trace += gram[i, i];
        (double[] values, double[,] vectors) = Jacobi(gram, n);
        int[] order = Enumerable.Range(0, n).OrderByDescending(i => values[i]).ToArray();
        var coordinates = new double[2][];
        var explained = new double[2];
        for (int k = 0; k < 2; k++)
        {
            coordinates[k] = new double[n];
            if (k >= n) continue;
            int column = order[k];
            double scale = Math.Sqrt(Math.Max(0, values[column]));
            int largest = 0;
            for (int i = 0; i < n; i++)
                if (Math.Abs(vectors[i, column]) > Math.Abs(vectors[largest, column])) largest = i;
            double sign = vectors[largest, column] < 0 ? -1 : 1;
            for (int i = 0; i < n; i++) coordinates[k][i] = sign * vectors[i, column] * scale;
            explained[k] = trace > 0 ? Math.Max(0, values[column]) / trace : 0;
        }
        return new ProjectionResult(coordinates[0], coordinates[1], explained);
    }

    /// <summary>G[i, j] = (x_i − mean)·(x_j − mean), in double.</summary>
    private static double[,] CentredGram(ReadOnlySpan<float> rows, int n, int length)
    {
        var mean = new double[length];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < length; c++) mean[c] += rows[i * length + c];
        for (int c = 0; c < length; c++) mean[c] /= n;
        var centred = new double[n * length];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < length; c++) centred[i * length + c] = rows[i * length + c] - mean[c];
        var gram = new double[n, n];
        for (int i = 0; i < n; i++)
        {
            for (int j = i; j < n; j++)
            {
                double dot = 0;
                for (int c = 0; c < length; c++) dot += centred[i * length + c] * centred[j * length + c];
                gram[i, j] = dot;
                gram[j, i] = dot;
            }
        }

        return gram;
    }

    /// <summary>Eigenvalues and eigenvectors (columns) of a symmetric matrix by cyclic Jacobi rotations.</summary>
    private static (double[] Values, double[,] Vectors) Jacobi(double[,] a, int n)
    {
        var v = new double[n, n];
        for (int i = 0; i < n; i++) v[i, i] = 1;
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0, total = 0;
            for (int p = 0; p < n; p++)
            {
                for (int q = 0; q < n; q++)
                {
                    total += a[p, q] * a[p, q];
                    if (p != q) off += a[p, q] * a[p, q];
                }
            }

            if (off <= 1e-30 * Math.Max(total, 1e-300)) break;
            for (int p = 0; p < n - 1; p++)
            {
                for (int q = p + 1; q < n; q++)
                    Rotate(a, v, n, p, q);
            }
        }
        var values = new double[n];
        for (int i = 0; i < n; i++) values[i] = a[i, i];
        return (values, v);
    }

    /// <summary>One Jacobi rotation that zeroes a[p, q] (Numerical Recipes' stable form).</summary>
    private static void Rotate(double[,] a, double[,] v, int n, int p, int q)
    {
        if (a[p, q] == 0) return;
        double theta = (a[q, q] - a[p, p]) / (2 * a[p, q]);
        double t = Math.Sign(theta == 0 ? 1 : theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
        double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; k++)
        {
            double akp = a[k, p], akq = a[k, q];
            a[k, p] = c * akp - s * akq;
            a[k, q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; k++)
        {
            double apk = a[p, k], aqk = a[q, k];
            a[p, k] = c * apk - s * aqk;
            a[q, k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; k++)
        {
            double vkp = v[k, p], vkq = v[k, q];
            v[k, p] = c * vkp - s * vkq;
            v[k, q] = s * vkp + c * vkq;
        }
    }
}
