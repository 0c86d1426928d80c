// The CLI's tests start processes and check POSIX file modes: they run on Linux only (as the project's machines do).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
