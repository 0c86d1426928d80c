using System.Text;
using System.Text.Json;
using LoPAProxy.ModelServer.Generation;
using LoPAProxy.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.ModelServer.Endpoints;

/// <summary>
/// Runs every (prompt × n) choice of a completions or chat request under a scheduler lease, on the shared batch
/// decoder, and answers with one JSON body or an SSE stream (chunks flushed as tokens arrive, then data: [DONE]).
/// </summary>
internal static class GenerationResponder
{
    private sealed record Plan(Prompt Prompt, int MaxTokens);

    private sealed record Answer(int Index, string Text, string Finish, List<SampledToken>? Tokens, int EchoLength);

    /// <summary>What one response is about: ids and names shared by every chunk.</summary>
    private sealed record Reply(HttpResponse Response, string Id, long Created, ServedModel Served, bool Chat,
        CancellationToken Cancel)
    {
        public string Object => Chat ? "chat.completion" : "text_completion";
        public string ChunkObject => Chat ? "chat.completion.chunk" : "text_completion";
    }

    public static async Task RespondAsync(HttpContext http, ModelServerServices services, IReadOnlyList<Prompt> prompts,
        SamplingRequest sampling, bool chat, bool echo)
    {
        var plans = new List<Plan>();
        for (int i = 0; i < prompts.Count; i++)
            plans.Add(PlanOf(prompts[i], i, prompts.Count, sampling, chat, services.Model));
        using IDisposable lease = await services.Scheduler.EnterAsync(http.RequestAborted);
        var reply = new Reply(http.Response, (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N"),
            OpenAiResponses.Now(), services.Model, chat, http.RequestAborted);
        int promptTokens = prompts.Sum(p => p.Count);
        if (sampling.Stream) await StreamAsync(reply, services, plans, sampling, echo, promptTokens);
        else await WholeAsync(reply, services, plans, sampling, echo, promptTokens);
    }

    private static Plan PlanOf(Prompt p, int index, int count, SamplingRequest s, bool chat, ServedModel served)
    {
        string param = count > 1 ? $"prompt[{index}]" : chat ? "messages" : "prompt";
        int limit = served.ContextLength;
        if (p.Count > limit)
        {
            throw ApiException.BadRequest($"This model's maximum context length is {limit} tokens; the prompt has " +
                $"{p.Count}", param, "context_length_exceeded");
        }

        int max = s.MaxTokens ?? limit - p.Count;
        if (max < 1 || p.Count + max > limit)
        {
            throw ApiException.BadRequest($"This model's maximum context length is {limit} tokens. However, you " +
                $"requested {p.Count + max} tokens ({p.Count} in the prompt, {max} in the completion)", "max_tokens",
                "context_length_exceeded");
        }

        return new Plan(p, max);
    }

    private static async Task WholeAsync(Reply reply, ModelServerServices services, List<Plan> plans,
        SamplingRequest sampling, bool echo, int promptTokens)
    {
        var answers = new List<Answer>();
        int completionTokens = 0;
        for (int index = 0; index < plans.Count * sampling.N; index++)
        {
            Plan plan = plans[index / sampling.N];
            var text = new StringBuilder(echo ? plan.Prompt.EchoText : "");
            int echoLength = text.Length;
            List<SampledToken>? tokens = sampling.TopLogprobs is null ? null : new();
            string finish = "length";
            await foreach (TextDelta d in Run(services, plan, sampling, index, reply.Cancel))
            {
                await DelayAsync(services.Options, reply.Cancel);
                text.Append(d.Text);
                if (d.Tokens is { } sampled) tokens!.AddRange(sampled);
                if (d.Finish is not { } f) continue;
                finish = OpenAiResponses.FinishName(f);
                completionTokens += d.CompletionTokens;
            }
            answers.Add(new Answer(index, text.ToString(), finish, tokens, echoLength));
        }
        await OpenAiResponses.WriteJsonAsync(reply.Response, j => WholeBody(j, reply, answers, promptTokens,
            completionTokens));
    }

    private static void WholeBody(Utf8JsonWriter j, Reply reply, List<Answer> answers, int promptTokens,
        int completionTokens)
    {
        j.WriteStartObject();
        Header(j, reply, reply.Object);
        j.WriteStartArray("choices");
        foreach (Answer answer in answers)
        {
            j.WriteStartObject();
            j.WriteNumber("index", answer.Index);
            if (reply.Chat)
            {
                j.WriteStartObject("message");
                j.WriteString("role", "assistant");
                j.WriteString("content", answer.Text);
                j.WriteEndObject();
            }
            else
            {
                j.WriteString("text", answer.Text);
            }

            Logprobs(j, reply, answer.Tokens, answer.EchoLength);
            j.WriteString("finish_reason", answer.Finish);
            j.WriteEndObject();
        }
        j.WriteEndArray();
        OpenAiResponses.Usage(j, promptTokens, completionTokens);
        j.WriteEndObject();
    }

    private static async Task StreamAsync(Reply reply, ModelServerServices services, List<Plan> plans,
        SamplingRequest sampling, bool echo, int promptTokens)
    {
        OpenAiResponses.StartEventStream(reply.Response);
        int completionTokens = 0;
        for (int index = 0; index < plans.Count * sampling.N; index++)
        {
            Plan plan = plans[index / sampling.N];
            var choice = new Choice(index);
            if (reply.Chat) await ChunkAsync(reply, choice, "", null, null, role: true);
            if (echo && !string.IsNullOrEmpty(plan.Prompt.EchoText))
                await ChunkAsync(reply, choice, plan.Prompt.EchoText, null, null, role: false);
            await foreach (TextDelta d in Run(services, plan, sampling, index, reply.Cancel))
            {
                await DelayAsync(services.Options, reply.Cancel);
                if (d.Finish is not { } f)
                {
                    await ChunkAsync(reply, choice, d.Text, d.Tokens, null, role: false);
                    continue;
                }
                completionTokens += d.CompletionTokens;
                if (d.Text.Length > 0 || d.Tokens is { Count: > 0 })
                    await ChunkAsync(reply, choice, d.Text, d.Tokens, null, role: false);
                string finish = OpenAiResponses.FinishName(f);
                await ChunkAsync(reply, choice, reply.Chat ? null : "", null, finish, role: false);
            }
        }
        if (sampling.IncludeUsage)
        {
            await OpenAiResponses.WriteEventAsync(reply.Response, j => UsageChunk(j, reply, promptTokens,
                completionTokens), reply.Cancel);
        }

        await OpenAiResponses.WriteDoneAsync(reply.Response, reply.Cancel);
    }

    private static IAsyncEnumerable<TextDelta> Run(ModelServerServices services, Plan plan, SamplingRequest sampling,
        int index, CancellationToken cancel) =>
        ChoiceRunner.RunAsync(services.Model, services.Decoder, plan.Prompt.Input, plan.MaxTokens,
            sampling.ForChoice(index), sampling.Stop, cancel);

    /// <summary>The demo option that makes a tiny model pace like a bigger one (ModelServerOptions.DelayPerTokenMs).
    /// </summary>
    private static Task DelayAsync(ModelServerOptions options, CancellationToken cancel) =>
        options.DelayPerTokenMs > 0 ? Task.Delay(options.DelayPerTokenMs, cancel) : Task.CompletedTask;

    /// <summary>A streamed choice: its index, and where its next text starts (completions logprobs' text_offset).
    /// </summary>
    private sealed class Choice(int index)
    {
        public int Index { get; } = index;
        public int Offset { get; set; }
    }

    private static async Task ChunkAsync(Reply reply, Choice choice, string? text,
        IReadOnlyList<SampledToken>? tokens, string? finish, bool role)
    {
        int offset = choice.Offset;
        await OpenAiResponses.WriteEventAsync(reply.Response, j =>
        {
            j.WriteStartObject();
            Header(j, reply, reply.ChunkObject);
            j.WriteStartArray("choices");
            j.WriteStartObject();
            j.WriteNumber("index", choice.Index);
            if (reply.Chat) Delta(j, text, role);
            else j.WriteString("text", text ?? "");
            Logprobs(j, reply, tokens, offset);
            if (finish is null) j.WriteNull("finish_reason");
            else j.WriteString("finish_reason", finish);
            j.WriteEndObject();
            j.WriteEndArray();
            j.WriteEndObject();
        }, reply.Cancel);
        choice.Offset += text?.Length ?? 0;
    }

    private static void Logprobs(Utf8JsonWriter j, Reply reply, IReadOnlyList<SampledToken>? tokens, int offset)
    {
        if (tokens is null or { Count: 0 }) j.WriteNull("logprobs");
        else if (reply.Chat) LogprobsJson.WriteChat(j, reply.Served, tokens);
        else LogprobsJson.WriteCompletion(j, reply.Served, tokens, offset);
    }

    private static void Delta(Utf8JsonWriter j, string? text, bool role)
    {
        j.WriteStartObject("delta");
        if (role) j.WriteString("role", "assistant");
        if (text != null) j.WriteString("content", text);
        j.WriteEndObject();
    }

    private static void UsageChunk(Utf8JsonWriter j, Reply reply, int promptTokens, int completionTokens)
    {
        j.WriteStartObject();
        Header(j, reply, reply.ChunkObject);
        j.WriteStartArray("choices");
        j.WriteEndArray();
        OpenAiResponses.Usage(j, promptTokens, completionTokens);
        j.WriteEndObject();
    }

    private static void Header(Utf8JsonWriter j, Reply reply, string objectName)
    {
        j.WriteString("id", reply.Id);
        j.WriteString("object", objectName);
        j.WriteNumber("created", reply.Created);
        j.WriteString("model", reply.Served.Name);
    }
}
