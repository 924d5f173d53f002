namespace LfmSharp.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("lfm: no commands yet");
        return 1;
    }
}
