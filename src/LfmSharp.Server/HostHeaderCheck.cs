using System.Net;
using LfmSharp.Server.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LfmSharp.Server;

/// <summary>
/// Refuses (403) a request whose <c>Host</c> header names a host this server was not told about. A DNS-rebinding page
/// (attacker.example resolved to 127.0.0.1) reaches a loopback server with its own name in <c>Host</c>, so checking
/// the name stops it, as vLLM and Jupyter do. IP literals are always fine: a page whose origin is an IP address of
/// this machine is not a rebinding attack. Allowed names: <c>localhost</c> (and <c>*.localhost</c>), the
/// <c>--host</c> value, and <see cref="LfmServerOptions.AllowedHosts"/> (<c>*</c> allows every name).
/// </summary>
internal sealed class HostHeaderCheck
{
    private readonly HashSet<string> _names = new(StringComparer.OrdinalIgnoreCase) { "localhost" };
    private readonly bool _any;

    public HostHeaderCheck(LfmServerOptions options)
    {
        _names.Add(options.Host.Trim('[', ']'));
        foreach (string name in options.AllowedHosts)
        {
            if (name == "*")
                _any = true;
            else if (!string.IsNullOrWhiteSpace(name))
                _names.Add(name.Trim().Trim('[', ']'));
        }
    }

    /// <summary>Throws the 403 for a host that is not allowed.</summary>
    public void Check(HttpContext ctx)
    {
        if (_any || Allowed(ctx.Request.Host.Host))
            return;
        throw new ApiException(403, $"The Host header '{ctx.Request.Host.Host}' is not allowed. Use this server by IP address or localhost, or start it with --allowed-host {ctx.Request.Host.Host}.",
            "permission_error", code: "host_not_allowed");
    }

    internal bool Allowed(string? host)
    {
        // HTTP/1.0 clients may send none; browsers always do.
        if (string.IsNullOrEmpty(host))
            return true;
        host = host.Trim('[', ']').TrimEnd('.');
        return IPAddress.TryParse(host, out _) || _names.Contains(host) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase);
    }
}
