using System.Text;
using System.Text.Json;
using LoPAProxy.ModelServer.Generation;
using LoPAProxy.ModelServer.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.ModelServer.Endpoints;

/// <summary>
/// Runs every (prompt × n) choice of a completions or chat request under a scheduler lease and answers
/// with one JSON body or an SSE stream (chunks flushed as tokens arrive, then data: [DONE]).
/// </summary>
internal static class GenerationResponder
{
    public static async Task RespondAsync(HttpContext http, ServedModel served, GenerationScheduler scheduler,
        IReadOnlyList<Prompt> prompts, SamplingRequest s, bool chat, bool echo, int delayPerTokenMs = 0)
    {
        var plans = prompts.Select((p, i) =>
        {
            string param = prompts.Count > 1 ? $"prompt[{i}]" : chat ? "messages" : "prompt";
            if (p.Count > served.ContextLength)
                throw ApiException.BadRequest($"This model's maximum context length is {served.ContextLength} tokens; the prompt has {p.Count}", param, "context_length_exceeded");
            int max = s.MaxTokens ?? served.ContextLength - p.Count;
            if (max < 1 || p.Count + max > served.ContextLength)
                throw ApiException.BadRequest($"This model's maximum context length is {served.ContextLength} tokens. However, you requested {p.Count + max} tokens ({p.Count} in the prompt, {max} in the completion)", "max_tokens", "context_length_exceeded");
            return (Prompt: p, MaxTokens: max);
        }).ToList();

        CancellationToken cancel = http.RequestAborted;
        using IDisposable lease = await scheduler.EnterAsync(cancel);
        string id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
        long created = OpenAiResponses.Now();
        string obj = chat ? "chat.completion" : "text_completion";
        int promptTokens = prompts.Sum(p => p.Count), completionTokens = 0;
        HttpResponse response = http.Response;

        if (!s.Stream)
        {
            var texts = new List<(int Index, string Text, string Finish)>();
            for (int pi = 0; pi < plans.Count; pi++)
            {
                var sampler = s.NewSampler(served.Tokenizer.VocabSize);
                for (int c = 0; c < s.N; c++)
                {
                    var sb = new StringBuilder(echo ? plans[pi].Prompt.EchoText : "");
                    string finish = "length";
                    await Task.Run(() =>
                    {
                        foreach (TextDelta d in ChoiceRunner.Run(served, plans[pi].Prompt.Rows, plans[pi].Prompt.Count, plans[pi].Prompt.LastToken, plans[pi].MaxTokens, sampler, s.Stop, cancel))
                        {
                            if (delayPerTokenMs > 0) Thread.Sleep(delayPerTokenMs);
                            sb.Append(d.Text);
                            if (d.Finish is { } f) { finish = OpenAiResponses.FinishName(f); completionTokens += d.CompletionTokens; }
                        }
                    }, cancel);
                    texts.Add((pi * s.N + c, sb.ToString(), finish));
                }
            }
            await OpenAiResponses.WriteJsonAsync(response, j =>
            {
                j.WriteStartObject();
                j.WriteString("id", id); j.WriteString("object", obj); j.WriteNumber("created", created); j.WriteString("model", served.Name);
                j.WriteStartArray("choices");
                foreach (var (index, text, finish) in texts)
                {
                    j.WriteStartObject();
                    j.WriteNumber("index", index);
                    if (chat)
                    {
                        j.WriteStartObject("message"); j.WriteString("role", "assistant"); j.WriteString("content", text); j.WriteEndObject();
                    }
                    else j.WriteString("text", text);
                    j.WriteNull("logprobs");
                    j.WriteString("finish_reason", finish);
                    j.WriteEndObject();
                }
                j.WriteEndArray();
                OpenAiResponses.Usage(j, promptTokens, completionTokens);
                j.WriteEndObject();
            });
            return;
        }

        OpenAiResponses.StartEventStream(response);
        string chunkObject = chat ? "chat.completion.chunk" : "text_completion";
        Task Chunk(int index, string? text, string? finish, bool role) => OpenAiResponses.WriteEventAsync(response, j =>
        {
            j.WriteStartObject();
            j.WriteString("id", id); j.WriteString("object", chunkObject); j.WriteNumber("created", created); j.WriteString("model", served.Name);
            j.WriteStartArray("choices");
            j.WriteStartObject();
            j.WriteNumber("index", index);
            if (chat)
            {
                j.WriteStartObject("delta");
                if (role) j.WriteString("role", "assistant");
                if (text != null) j.WriteString("content", text);
                j.WriteEndObject();
            }
            else j.WriteString("text", text ?? "");
            j.WriteNull("logprobs");
            if (finish is null) j.WriteNull("finish_reason"); else j.WriteString("finish_reason", finish);
            j.WriteEndObject();
            j.WriteEndArray();
            j.WriteEndObject();
        }, cancel);

        for (int pi = 0; pi < plans.Count; pi++)
        {
            var sampler = s.NewSampler(served.Tokenizer.VocabSize);
            for (int c = 0; c < s.N; c++)
            {
                int index = pi * s.N + c;
                if (chat) await Chunk(index, "", null, role: true);
                if (echo && !string.IsNullOrEmpty(plans[pi].Prompt.EchoText)) await Chunk(index, plans[pi].Prompt.EchoText, null, false);
                // The generator is synchronous CPU work: pull each delta on the thread pool, write it as it comes.
                using IEnumerator<TextDelta> deltas = ChoiceRunner.Run(served, plans[pi].Prompt.Rows, plans[pi].Prompt.Count, plans[pi].Prompt.LastToken, plans[pi].MaxTokens, sampler, s.Stop, cancel).GetEnumerator();
                while (await Task.Run(deltas.MoveNext, cancel))
                {
                    if (delayPerTokenMs > 0) await Task.Delay(delayPerTokenMs, cancel);
                    TextDelta d = deltas.Current;
                    if (d.Finish is { } f)
                    {
                        completionTokens += d.CompletionTokens;
                        if (d.Text.Length > 0) await Chunk(index, d.Text, null, false);
                        await Chunk(index, chat ? null : "", OpenAiResponses.FinishName(f), false);
                    }
                    else await Chunk(index, d.Text, null, false);
                }
            }
        }
        if (s.IncludeUsage)
            await OpenAiResponses.WriteEventAsync(response, j =>
            {
                j.WriteStartObject();
                j.WriteString("id", id); j.WriteString("object", chunkObject); j.WriteNumber("created", created); j.WriteString("model", served.Name);
                j.WriteStartArray("choices"); j.WriteEndArray();
                OpenAiResponses.Usage(j, promptTokens, completionTokens);
                j.WriteEndObject();
            }, cancel);
        await OpenAiResponses.WriteDoneAsync(response, cancel);
    }
}
