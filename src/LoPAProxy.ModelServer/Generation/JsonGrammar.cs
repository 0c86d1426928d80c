namespace LoPAProxy.ModelServer.Generation;

/// <summary>
/// JSON as llama.cpp grammar (GBNF) rules, written from RFC 8259's grammar (objects, arrays, strings with JSON's
/// escapes, numbers, true, false, null) with at most a little whitespace between tokens (an unbounded run of spaces is
/// a way for a model never to finish). <see cref="Object"/> is OpenAI's response_format {"type": "json_object"};
/// <see cref="JsonSchemaGrammar"/> builds on <see cref="Rules"/>. Every grammar given to the sampler starts at
/// <see cref="SamplingSettings.GrammarRoot"/>.
/// </summary>
internal static class JsonGrammar
{
    /// <summary>Any JSON value (<c>value</c>) and its parts, plus <c>integer</c> and <c>boolean</c>.</summary>
    public const string Rules = """
        value   ::= object | array | string | number | boolean | "null"
        object  ::= "{" ws ( member ( "," ws member )* )? "}" ws
        member  ::= string ws ":" ws value ws
        array   ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
        string  ::= "\"" char* "\""
        char    ::= [^"\\\x00-\x1f] | "\\" ( ["\\/bfnrt] | "u" hex hex hex hex )
        hex     ::= [0-9a-fA-F]
        number  ::= integer ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?
        integer ::= "-"? ( "0" | [1-9] [0-9]* )
        boolean ::= "true" | "false"
        ws      ::= ( " " | "\n" )? ( " " | "\n" )?
        """;

    public const string Object = "root ::= object\n" + Rules;

    /// <summary>Any JSON value: a json_schema response format without a schema.</summary>
    public const string AnyValue = "root ::= value\n" + Rules;
}
