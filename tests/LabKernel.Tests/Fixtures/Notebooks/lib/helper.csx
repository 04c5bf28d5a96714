// Loaded by script.csx through #load; its own #load is relative to this file.
#load "constants.csx"
static string Greet(string name) => $"{Prefix}, {name}";
