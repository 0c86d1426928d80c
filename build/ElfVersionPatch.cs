// An MSBuild task (compiled by RoslynCodeTaskFactory): marks one symbol-version requirement of an ELF64 shared
// library weak, after checking it is exactly the expected one. See LibTorchSharpGlibcxx.targets for why.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class LoPAWeakenGlibcxxRequirement : Task
{
    private const uint ShtDynSym = 11, ShtVerNeed = 0x6ffffffe, ShtVerSym = 0x6fffffff;
    private const ushort VerFlgWeak = 0x2;

    [Required] public string Library { get; set; }
    [Required] public string Version { get; set; }
    [Required] public string Symbol { get; set; }

    public override bool Execute()
    {
        byte[] elf = File.ReadAllBytes(Library);
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[4] != 2 || elf[5] != 1)
            return Fail("not a little-endian ELF64 file");
        var sections = Sections(elf);
        var verneed = sections.Find(s => s.Type == ShtVerNeed);
        var versym = sections.Find(s => s.Type == ShtVerSym);
        var dynsym = sections.Find(s => s.Type == ShtDynSym);
        if (verneed == null || versym == null || dynsym == null) return Fail("no .gnu.version_r/.gnu.version/.dynsym");
        var strings = sections[(int)verneed.Link];
        var matches = new List<(long FlagsAt, ushort Index, ushort Flags)>();
        long need = verneed.Offset;
        while (true)
        {
            ushort count = U16(elf, need + 2);
            long aux = need + U32(elf, need + 8);
            for (int i = 0; i < count; i++)
            {
                string name = Str(elf, strings.Offset + U32(elf, aux + 8));
                if (name == Version) matches.Add((aux + 4, U16(elf, aux + 6), U16(elf, aux + 4)));
                aux += U32(elf, aux + 12);
            }
            uint next = U32(elf, need + 12);
            if (next == 0) break;
            need += next;
        }
        if (matches.Count != 1) return Fail($"expected exactly one {Version} requirement, found {matches.Count}");
        var (flagsAt, index, flags) = matches[0];
        var symbols = new List<string>();
        var symbolNames = sections[(int)dynsym.Link];
        long entries = dynsym.Size / 24;
        for (long i = 0; i < entries; i++)
            if ((U16(elf, versym.Offset + 2 * i) & 0x7fff) == index)
                symbols.Add(Str(elf, symbolNames.Offset + U32(elf, dynsym.Offset + 24 * i)));
        if (symbols.Count != 1 || symbols[0] != Symbol)
            return Fail($"{Version} carries [{string.Join(", ", symbols)}], expected only {Symbol}");
        if ((flags & VerFlgWeak) != 0) return true; // already patched
        BitConverter.GetBytes((ushort)(flags | VerFlgWeak)).CopyTo(elf, flagsAt);
        File.Delete(Library); // never write through a hard link into the package cache
        File.WriteAllBytes(Library, elf);
        string file = Path.GetFileName(Library);
        Log.LogMessage(MessageImportance.High, $"{file}: {Version} requirement ({Symbol}) made weak");
        return true;
    }

    private bool Fail(string why)
    {
        Log.LogError($"{Library}: {why}. The GLIBCXX patch (build/LibTorchSharpGlibcxx.targets) no longer fits this " +
            "TorchSharp build; re-examine it before changing the check.");
        return false;
    }

    private sealed class Section
    {
        public uint Type;
        public long Offset, Size;
        public uint Link;
    }

    private static List<Section> Sections(byte[] elf)
    {
        long at = (long)BitConverter.ToUInt64(elf, 0x28);
        int size = U16(elf, 0x3A), count = U16(elf, 0x3C);
        var list = new List<Section>();
        for (int i = 0; i < count; i++, at += size)
            list.Add(new Section
            {
                Type = U32(elf, at + 4), Offset = (long)BitConverter.ToUInt64(elf, (int)at + 24),
                Size = (long)BitConverter.ToUInt64(elf, (int)at + 32), Link = U32(elf, at + 40),
            });
        return list;
    }

    private static ushort U16(byte[] b, long at) => BitConverter.ToUInt16(b, (int)at);
    private static uint U32(byte[] b, long at) => BitConverter.ToUInt32(b, (int)at);

    private static string Str(byte[] b, long at)
    {
        int end = (int)at;
        while (b[end] != 0) end++;
        return Encoding.ASCII.GetString(b, (int)at, end - (int)at);
    }
}
