using LoPAProxy.ModelServer.Generation;

namespace LoPAProxy.ModelServer;

/// <summary>What a route handler needs: the model, the decoder that runs it, admission, and the settings.</summary>
public sealed record ModelServerServices(ServedModel Model, BatchDecoder Decoder, GenerationScheduler Scheduler,
    ModelServerOptions Options);
