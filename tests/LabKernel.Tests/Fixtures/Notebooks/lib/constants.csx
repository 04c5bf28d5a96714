const string Prefix = "hello";
