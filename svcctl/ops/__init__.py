"""Operations: one module per use case (trace, check, endpoints, dns, rules, fleet), each a plain function from a
small request and a context (the source, the node reader, a reporter) to a typed report. The click commands
parse, call one operation, render and return an exit status; sources and analysis never see them."""
