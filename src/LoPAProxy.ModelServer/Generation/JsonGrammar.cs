namespace LoPAProxy.ModelServer.Generation;

/// <summary>
/// OpenAI's response_format {"type": "json_object"} as a llama.cpp grammar (GBNF): the output is one JSON object,
/// written from RFC 8259's grammar (objects, arrays, strings with JSON's escapes, numbers, true, false, null) with
/// at most a little whitespace between tokens (an unbounded run of spaces is a way for a model never to finish).
/// Its start rule is <see cref="SamplingSettings.GrammarRoot"/>, as every grammar given to the sampler.
/// </summary>
internal static class JsonGrammar
{
    public const string Object = """
        root   ::= object
        value  ::= object | array | string | number | "true" | "false" | "null"
        object ::= "{" ws ( member ( "," ws member )* )? "}" ws
        member ::= string ws ":" ws value ws
        array  ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
        string ::= "\"" char* "\""
        char   ::= [^"\\\x00-\x1f] | "\\" ( ["\\/bfnrt] | "u" hex hex hex hex )
        hex    ::= [0-9a-fA-F]
        number ::= "-"? ( "0" | [1-9] [0-9]* ) ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?
        ws     ::= ( " " | "\n" )? ( " " | "\n" )?
        """;
}
