#!/usr/bin/env dotnet-script
#load "lib/helper.csx"
Console.WriteLine(Greet(string.Join("+", Args)));
Console.Error.WriteLine($"{Args.Count} args");
return 3;
