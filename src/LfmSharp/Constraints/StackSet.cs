using System.Runtime.InteropServices;

namespace LfmSharp.Constraints;

/// <summary>
/// Progress inside one node. What the fields mean depends on the node kind (see the phase enums in
/// GrammarPhases.cs, read through the typed accessors below); every field is written explicitly so that equal progress means equal bytes
/// (stacks are deduplicated by comparing frames).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Frame
{
    public int Node;
    /// <summary>Object: property cursor. Array: items done. String: code points. Sequence: child index. Number: high half of a bounded value.</summary>
    public int Count;
    /// <summary>Object: key-trie node / chosen property. Literal: trie node. Open bytes: index. Number: low half of a bounded value.</summary>
    public int Pos;
    public byte Phase;
    /// <summary>String / free-key sub-state, or digits in the current number part.</summary>
    public byte Sub;
    /// <summary>Whitespace consumed in the current gap (0 none, 1 one space, 2 + k newline and k indent bytes).</summary>
    public byte Ws;
    /// <summary>Object key: bit 0 = a free key is still possible. Number: bit 0 = negative.</summary>
    public byte Flags;

    // Typed views of Phase and Sub for the node kind the frame belongs to (the stored bytes stay untyped so that
    // stacks compare as plain bytes).
    public ObjectPhase ObjectPhase { readonly get => (ObjectPhase)Phase; set => Phase = (byte)value; }
    public ArrayPhase ArrayPhase { readonly get => (ArrayPhase)Phase; set => Phase = (byte)value; }
    public StringPhase StringPhase { readonly get => (StringPhase)Phase; set => Phase = (byte)value; }
    public NumberPhase NumberPhase { readonly get => (NumberPhase)Phase; set => Phase = (byte)value; }
    public StringState StringState { readonly get => (StringState)Sub; set => Sub = (byte)value; }
    public KeyState KeyState { readonly get => (KeyState)Sub; set => Sub = (byte)value; }
}

/// <summary>
/// The runtime state: one or more stacks of frames (more than one only while anyOf alternatives share a prefix).
/// Stack i lives in Frames[i × Capacity .. i × Capacity + Depth[i]). Copying is a few small array copies, which is
/// what lets the vocabulary walk branch cheaply.
/// </summary>
internal sealed class StackSet
{
    public readonly int Capacity;   // frames per stack
    public Frame[] Frames;          // [stacks × Capacity]
    public int[] Depth;             // [stacks]
    public int Count;               // live stacks

    public StackSet(int capacity, int stacks = 1)
    {
        Capacity = capacity;
        Frames = new Frame[capacity * stacks];
        Depth = new int[stacks];
    }

    public void EnsureStacks(int stacks)
    {
        if (Depth.Length >= stacks)
            return;
        int n = Math.Max(stacks, Depth.Length * 2);
        Array.Resize(ref Frames, n * Capacity);
        Array.Resize(ref Depth, n);
    }

    public void Init(int rootNode)
    {
        Count = 1;
        Depth[0] = 1;
        Frames[0] = new Frame { Node = rootNode };
    }

    public void CopyFrom(StackSet other)
    {
        EnsureStacks(other.Count);
        Count = other.Count;
        for (int i = 0; i < other.Count; i++)
        {
            int d = other.Depth[i];
            Depth[i] = d;
            int start = i * Capacity;
            other.Frames.AsSpan(start, d).CopyTo(Frames.AsSpan(start, d));
        }
    }

    /// <summary>Appends a copy of stack <paramref name="from"/>; returns its index.</summary>
    public int AddCopyOf(int from)
    {
        EnsureStacks(Count + 1);
        int to = Count++;
        int d = Depth[from];
        Depth[to] = d;
        Frames.AsSpan(from * Capacity, d).CopyTo(Frames.AsSpan(to * Capacity, d));
        return to;
    }

    public void MoveStack(int from, int to)
    {
        int d = Depth[from];
        Depth[to] = d;
        Frames.AsSpan(from * Capacity, d).CopyTo(Frames.AsSpan(to * Capacity, d));
    }

    public bool SameStack(int a, int b)
    {
        int d = Depth[a];
        if (d != Depth[b])
            return false;
        var x = MemoryMarshal.AsBytes(Frames.AsSpan(a * Capacity, d));
        var y = MemoryMarshal.AsBytes(Frames.AsSpan(b * Capacity, d));
        return x.SequenceEqual(y);
    }
}
