using System.Globalization;
using System.Text;

namespace LoPAProxy.Training;

/// <summary>A two-panel SVG: training loss per step (raw and a moving average) and evaluation accuracy per epoch.</summary>
public static class TrainingChart
{
    public static string Svg(string title, IReadOnlyList<double> losses, IReadOnlyList<(int Epoch, double Accuracy)> accuracy, string metric)
    {
        const int W = 720, H = 260, Pad = 48;
        var svg = new StringBuilder();
        string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);
        svg.Append("<svg xmlns=\"http://www.w3.org/2000/svg\" ")
            .Append(CultureInfo.InvariantCulture, $"width=\"{W}\" height=\"{2 * H + 40}\" ")
            .Append("font-family=\"sans-serif\" font-size=\"12\">");
        svg.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Pad}\" y=\"20\" font-size=\"14\">")
            .Append(System.Security.SecurityElement.Escape(title)).Append("</text>");

        void Panel(int top, string label, IReadOnlyList<(double X, double Y)> raw, IReadOnlyList<(double X, double Y)>? smooth, double yMin, double yMax, double xMax, string xLabel)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<g transform=\"translate(0,{top})\">");
            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{Pad}\" y=\"10\" ")
                .Append(CultureInfo.InvariantCulture, $"width=\"{W - 2 * Pad}\" height=\"{H - 50}\" ")
                .Append("fill=\"none\" stroke=\"#888\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Pad}\" y=\"6\">{label}</text>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{W - Pad}\" y=\"{H - 22}\" text-anchor=\"end\">")
                .Append(xLabel).Append("</text>");
            double Sx(double x) => Pad + (W - 2 * Pad) * (xMax <= 0 ? 0 : x / xMax);
            double Sy(double y) => 10 + (H - 50) * (1 - (yMax <= yMin ? 0.5 : (y - yMin) / (yMax - yMin)));
            for (int i = 0; i <= 4; i++)
            {
                double y = yMin + (yMax - yMin) * i / 4;
                svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Pad - 4}\" y=\"{F(Sy(y) + 4)}\" ")
                    .Append("text-anchor=\"end\">")
                    .Append(y.ToString("0.###", CultureInfo.InvariantCulture)).Append("</text>");
            }
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Pad}\" y=\"{H - 22}\">0</text>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{W - Pad}\" y=\"{H - 36}\" text-anchor=\"end\">")
                .Append(xMax.ToString("0", CultureInfo.InvariantCulture)).Append("</text>");
            string Line(IReadOnlyList<(double X, double Y)> pts, string colour, double width) =>
                $"<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"{F(width)}\" points=\"{string.Join(" ", pts.Select(p => $"{F(Sx(p.X))},{F(Sy(p.Y))}"))}\"/>";
            if (raw.Count > 0) svg.Append(Line(raw, smooth is null ? "#c33" : "#bbb", smooth is null ? 2 : 1));
            if (smooth is { Count: > 0 }) svg.Append(Line(smooth, "#c33", 2));
            IReadOnlyList<(double X, double Y)> points = smooth is null ? raw : [];
            foreach (var p in points)
            {
                svg.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{F(Sx(p.X))}\" cy=\"{F(Sy(p.Y))}\" ")
                    .Append("r=\"3\" fill=\"#c33\"/>");
            }

            svg.Append("</g>");
        }

        var raw = losses.Select((l, i) => ((double)(i + 1), l)).ToList();
        int window = Math.Max(1, losses.Count / 50);
        var smooth = raw.Select((p, i) => (p.Item1, raw.Skip(Math.Max(0, i - window + 1)).Take(Math.Min(window, i + 1)).Average(q => q.Item2))).ToList();
        double lossMax = losses.Count == 0 ? 1 : losses.Max();
        Panel(30, "training loss (grey: per step; red: moving average)", raw, smooth, 0, lossMax, Math.Max(1, losses.Count), "step");
        var acc = accuracy.Select(a => ((double)a.Epoch, a.Accuracy)).ToList();
        Panel(30 + H, $"evaluation {metric} per epoch", acc, null, 0, 1, Math.Max(1, accuracy.Count == 0 ? 1 : accuracy.Max(a => a.Epoch)), "epoch");
        svg.Append("</svg>");
        return svg.ToString();
    }
}
