using System.Data.Common;
using System.Globalization;
using LoPAProxy.OpenAi;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace LoPAProxy.Proxy.Store;

/// <summary>
/// Store outages: which failures are one (the server gone or refusing, a connection or I/O failure — not a
/// constraint, a missing row or a bad statement), the 503 a request gets for one, and the log — one warning per
/// interval with how many requests it affected, never one per request, and one line when the store is back.
/// </summary>
public sealed class StoreOutage(ILogger<StoreOutage> log, TimeProvider clock)
{
    public const int RetryAfterSeconds = 5;
    private static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(30), RetryInterval = TimeSpan.FromSeconds(1);
    private readonly object _gate = new();
    private DateTimeOffset? _down, _lastLogged, _retryAt;
    private long _affected;

    /// <summary>Whether an outage is current: reported, and no success since.</summary>
    public bool IsDown
    {
        get
        {
            lock (_gate) return _down is not null;
        }
    }

    /// <summary>
    /// While an outage is current, callers holding a cached answer use it without asking the store — which is tried
    /// again at most once a second — so requests do not each pay for a failing connection.
    /// </summary>
    public bool SkipStore
    {
        get
        {
            lock (_gate) return _down is not null && clock.GetUtcNow() < _retryAt;
        }
    }

    /// <summary>True for a failure that means the store is unreachable (not the client leaving).</summary>
    public static bool Is(Exception e) => e switch
    {
        StoreUnavailableException => true,
        Npgsql.PostgresException p => p.SqlState.Length >= 2 && p.SqlState[..2] is "08" or "53" or "57" or "58",
        Npgsql.NpgsqlException => true,
        // busy, locked, read-only, I/O error, full, cannot open
        SqliteException s => s.SqliteErrorCode is 5 or 6 or 8 or 10 or 13 or 14,
        DbException => false,
        TimeoutException or System.Net.Sockets.SocketException => true,
        _ => e.InnerException is { } inner && Is(inner),
    };

    /// <summary>The answer a request gets while the store is down.</summary>
    public ApiException Refusal(Exception e)
    {
        Report(e);
        return new ApiException(503, "the tenant store is unavailable; retry shortly", null, "store_unavailable")
        {
            Headers = new Dictionary<string, string>
            {
                ["retry-after"] = RetryAfterSeconds.ToString(CultureInfo.InvariantCulture),
            },
        };
    }

    /// <summary>Counts one affected request; logs at most once per interval.</summary>
    public void Report(Exception e)
    {
        DateTimeOffset now = clock.GetUtcNow();
        long affected;
        lock (_gate)
        {
            _down ??= now;
            _retryAt = now + RetryInterval;
            _affected++;
            if (_lastLogged is { } last && now - last < LogInterval) return;
            _lastLogged = now;
            affected = _affected;
            _affected = 0;
        }
        log.LogWarning("the tenant store is unavailable ({Message}); {Affected} request(s) affected since the last "
            + "report; cached keys and adapters are still served", e.Message, affected);
    }

    /// <summary>The store answered: an outage, if any, is over.</summary>
    public void Recovered()
    {
        DateTimeOffset? since;
        lock (_gate)
        {
            since = _down;
            if (since is null) return;
            _down = null;
            _lastLogged = null;
            _affected = 0;
        }
        log.LogWarning("the tenant store is available again (down since {Since:O})", since);
    }
}
