using System.ComponentModel;

namespace LoPAProxy.Proxy.Configuration;

/// <summary>The soft prompt's dtype on the wire.</summary>
[TypeConverter(typeof(OptionNameConverter<WireDType>))]
public enum WireDType { Fp32, Bf16, Fp16 }

/// <summary>vllm-chat: where the prompt_embeds part goes relative to the instance text.</summary>
[TypeConverter(typeof(OptionNameConverter<EmbedsPosition>))]
public enum EmbedsPosition { Before, After }

/// <summary>Which chat text is the instance the encoder reads.</summary>
[TypeConverter(typeof(OptionNameConverter<InstanceTextSource>))]
public enum InstanceTextSource { LastUser, AllUser }

/// <summary>Where tenants, keys and adapters live. Directory is gone (named only to explain the migration).</summary>
[TypeConverter(typeof(OptionNameConverter<StoreKind>))]
public enum StoreKind { Sqlite, Postgres, Directory }

/// <summary>Where the rate-limit counters live: auto (postgres with a postgres store, else local).</summary>
[TypeConverter(typeof(OptionNameConverter<CountersKind>))]
public enum CountersKind { Auto, Local, Postgres }

/// <summary>What a request meets while shared counters are unreachable.</summary>
[TypeConverter(typeof(OptionNameConverter<CountersDownPolicy>))]
public enum CountersDownPolicy { Open, Closed }

/// <summary>The console log's format.</summary>
[TypeConverter(typeof(OptionNameConverter<LogFormat>))]
public enum LogFormat { Json, Text }
