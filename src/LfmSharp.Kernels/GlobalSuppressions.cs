using System.Diagnostics.CodeAnalysis;

// QuantMath's Check* helpers validate on behalf of the public quantize/dequantize/dot entry points, so the exception
// names the caller's parameter (src, dst, weightRow, activationRow), which is the one the user passed.
[assembly: SuppressMessage("Usage", "CA2208:Instantiate argument exceptions correctly", Scope = "type",
    Target = "~T:LfmSharp.Kernels.Quant.QuantMath", Justification = "The helpers name the public caller's parameter.")]
