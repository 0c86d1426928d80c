using System.Threading.Channels;
using LLama;
using LLama.Common;
using LLama.Native;

namespace LoPAProxy.ModelServer.Generation;

/// <summary>
/// Decodes every admitted sequence together in one llama.cpp context (continuous batching): one thread owns the
/// context; each turn it prefills newly admitted prompts (token pieces as token batches, client embeddings as
/// embedding batches), then advances every running sequence by one token in a single decode call and samples each
/// from its own row of logits. A sequence owns a llama.cpp sequence id and its KV cells until it ends; a cancelled
/// one leaves at the next turn. Sequences never see each other's cache (distinct sequence ids).
/// </summary>
public sealed class BatchDecoder : IDisposable
{
    private readonly ServedModel _model;
    private readonly LLamaContext _context;
    private readonly Channel<Sequence> _incoming = Channel.CreateUnbounded<Sequence>();
    private readonly List<Sequence> _running = new();
    private readonly Stack<int> _freeIds = new();
    private readonly LLamaBatch _tokens = new();
    private readonly LLamaBatchEmbeddings _embeddings;
    private readonly int _batchLimit;
    private readonly Thread _thread;
    private readonly int[] _logitRows; // per running sequence, its row of logits in the step's batch

    private int _largestStep;

    public int Slots { get; }
    /// <summary>The most sequences one decode call has advanced together so far (1 means nothing overlapped).</summary>
    public int LargestStep => Volatile.Read(ref _largestStep);
    public int Threads { get; }
    public string KvCacheType { get; }

    public BatchDecoder(ServedModel model, ModelServerOptions options)
    {
        _model = model;
        Slots = Math.Max(1, options.MaxConcurrent);
        _logitRows = new int[Slots];
        Threads = options.Threads ?? Environment.ProcessorCount;
        KvCacheType = options.KvCacheType;
        _batchLimit = 512;
        var parameters = new ModelParams(model.GgufPath)
        {
            ContextSize = (uint)(model.ContextLength * Slots),
            BatchSize = (uint)_batchLimit,
            UBatchSize = (uint)_batchLimit,
            SeqMax = (uint)Slots,
            Threads = Threads,
            BatchThreads = Threads,
            TypeK = CacheType(options.KvCacheType),
            TypeV = CacheType(options.KvCacheType),
            FlashAttention = false,
            KVUnified = false, // one KV stream per sequence: attention reads only its own cells
        };
        _context = model.Weights.CreateContext(parameters);
        _embeddings = new LLamaBatchEmbeddings(model.HiddenSize);
        for (int id = Slots - 1; id >= 0; id--) _freeIds.Push(id);
        _thread = new Thread(Run) { IsBackground = true, Name = "llama.cpp decoder" };
        _thread.Start();
    }

    /// <summary>Queues a prompt; tokens arrive on the handle until a stop token, <paramref name="maxTokens"/>, or
    /// cancellation.</summary>
    public GenerationHandle Start(PromptInput prompt, int maxTokens, SamplingSettings sampling,
        CancellationToken cancel)
    {
        var single = new UnboundedChannelOptions { SingleReader = true, SingleWriter = true };
        var output = Channel.CreateUnbounded<SampledToken>(single);
        var handle = new GenerationHandle(output.Reader);
        var sequence = new Sequence(prompt, maxTokens, sampling, output.Writer, handle, cancel);
        ObjectDisposedException.ThrowIf(!_incoming.Writer.TryWrite(sequence), this);
        return handle;
    }

    public static GGMLType CacheType(string name) => name switch
    {
        "f32" => GGMLType.GGML_TYPE_F32,
        "f16" => GGMLType.GGML_TYPE_F16,
        "q8_0" => GGMLType.GGML_TYPE_Q8_0,
        _ => throw new ArgumentException($"KV cache type '{name}' is not one of f32, f16, q8_0"),
    };

    private void Run()
    {
        while (true)
        {
            if (_running.Count == 0 && !WaitForWork()) return;
            try
            {
                Admit();
                DropCancelled();
                if (_running.Count > 0) Step();
            }
            catch (Exception e)
            {
                // Whatever failed, the decoder thread survives: the sequences it was running end with the error.
                foreach (Sequence s in _running) End(s, e);
                _running.Clear();
            }
        }
    }

    /// <summary>Blocks until a prompt arrives; false when the decoder is shutting down.</summary>
    private bool WaitForWork()
    {
        try { return _incoming.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult(); }
        catch (ChannelClosedException) { return false; }
    }

    private void Admit()
    {
        while (_freeIds.Count > 0 && _incoming.Reader.TryRead(out Sequence? sequence))
        {
            if (sequence.Cancel.IsCancellationRequested)
            {
                sequence.Output.TryComplete(new OperationCanceledException(sequence.Cancel));
                continue;
            }
            sequence.Id = _freeIds.Pop();
            try
            {
                // Created, used and disposed on this thread only; a grammar llama.cpp refuses ends this sequence only.
                sequence.Sampler = sequence.Sampling.CreateChain(_model.Weights.Vocab);
                int logitsIndex = Prefill(sequence);
                Deliver(sequence, logitsIndex);
            }
            catch (Exception e) { End(sequence, e); }
            if (!sequence.Ended) _running.Add(sequence);
        }
    }

    /// <summary>Decodes the whole prompt of one sequence; returns the batch index of its last row's logits.</summary>
    private int Prefill(Sequence s)
    {
        int total = s.Prompt.Count, done = 0, lastIndex = 0;
        foreach (PromptPiece piece in s.Prompt.Pieces)
        {
            for (int start = 0; start < piece.Count; start += _batchLimit)
            {
                int count = Math.Min(_batchLimit, piece.Count - start);
                if (piece.Tokens is { } tokens)
                {
                    _tokens.Clear();
                    for (int i = 0; i < count; i++)
                        lastIndex = _tokens.Add(tokens[start + i], done + i, (LLamaSeqId)s.Id, done + i == total - 1);
                    Check(_context.NativeHandle.Decode(_tokens));
                }
                else
                {
                    int dim = _model.HiddenSize;
                    _embeddings.Clear();
                    for (int i = 0; i < count; i++)
                    {
                        ReadOnlySpan<float> row = piece.Rows.AsSpan((start + i) * dim, dim);
                        lastIndex = _embeddings.Add(row, done + i, (LLamaSeqId)s.Id, done + i == total - 1);
                    }
                    Check(_context.NativeHandle.Decode(_embeddings));
                }
                done += count;
            }
        }
        s.Position = total;
        return lastIndex;
    }

    /// <summary>One token for every running sequence, in one decode call.</summary>
    private void Step()
    {
        _tokens.Clear();
        int[] indices = _logitRows;
        if (_running.Count > _largestStep) Volatile.Write(ref _largestStep, _running.Count);
        for (int i = 0; i < _running.Count; i++)
        {
            Sequence s = _running[i];
            indices[i] = _tokens.Add(s.Pending, s.Position, (LLamaSeqId)s.Id, true);
        }
        try { Check(_context.NativeHandle.Decode(_tokens)); }
        catch (Exception e)
        {
            foreach (Sequence s in _running.ToList()) End(s, e);
            _running.Clear();
            return;
        }
        for (int i = 0; i < _running.Count; i++)
        {
            Sequence s = _running[i];
            s.Position++;
            Deliver(s, indices[i]);
        }
        _running.RemoveAll(s => s.Ended);
    }

    /// <summary>Samples the sequence's next token from its row of logits and hands it on, or ends the sequence.
    /// </summary>
    private void Deliver(Sequence s, int logitsIndex)
    {
        int token = (int)s.Sampler!.Sample(_context.NativeHandle, logitsIndex);
        if (_model.StopTokens.Contains(token) && !s.Sampling.IgnoreEos)
        {
            s.Handle.Finish = FinishReason.Stop;
            End(s, null);
            return;
        }
        SampledToken sampled = s.Sampling.TopLogprobs is { } top
            ? TokenLogprobs.Of(_context.NativeHandle.GetLogitsIth(logitsIndex), token, top)
            : new SampledToken(token, 0, null);
        s.Output.TryWrite(sampled);
        s.Generated++;
        s.Pending = token;
        if (s.Generated >= s.MaxTokens || s.Position >= _model.ContextLength)
        {
            s.Handle.Finish = FinishReason.Length;
            End(s, null);
        }
    }

    private void DropCancelled()
    {
        foreach (Sequence s in _running.Where(s => s.Cancel.IsCancellationRequested).ToList())
            End(s, new OperationCanceledException(s.Cancel));
        _running.RemoveAll(s => s.Ended);
    }

    /// <summary>Frees the sequence's KV cells and id, and completes its output (with the error, if any).</summary>
    private void End(Sequence s, Exception? error)
    {
        if (s.Ended) return;
        s.Ended = true;
        _context.NativeHandle.MemorySequenceRemove((LLamaSeqId)s.Id, -1, -1);
        _freeIds.Push(s.Id);
        s.Sampler?.Dispose();
        s.Output.TryComplete(error);
    }

    private static void Check(DecodeResult result)
    {
        if (result != DecodeResult.Ok)
            throw new InvalidOperationException($"llama.cpp could not decode the batch ({result})");
    }

    public void Dispose()
    {
        _incoming.Writer.TryComplete();
        _thread.Join(TimeSpan.FromSeconds(30));
        _context.Dispose();
    }

    private sealed class Sequence(PromptInput prompt, int maxTokens, SamplingSettings sampling,
        ChannelWriter<SampledToken> output, GenerationHandle handle, CancellationToken cancel)
    {
        public PromptInput Prompt { get; } = prompt;
        public int MaxTokens { get; } = maxTokens;
        public SamplingSettings Sampling { get; } = sampling;
        public SafeLLamaSamplerChainHandle? Sampler { get; set; }
        public ChannelWriter<SampledToken> Output { get; } = output;
        public GenerationHandle Handle { get; } = handle;
        public CancellationToken Cancel { get; } = cancel;
        public int Id { get; set; }
        public int Position { get; set; }
        public int Pending { get; set; }
        public int Generated { get; set; }
        public bool Ended { get; set; }
    }
}
