# hostile regexes (issue 18): exponential ones are refused with PatternSyntaxException, a polynomial one
# too costly for the subject ends the run at the instruction budget; Python's re would run them unbounded
.class public LRegex;
.super Ljava/lang/Object;

.method public static main([Ljava/lang/String;)V
    .registers 6
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    const-string v1, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"
    :s1
    const-string v2, "(a+)+$"
    invoke-virtual {v1, v2}, Ljava/lang/String;->matches(Ljava/lang/String;)Z
    move-result v3
    invoke-virtual {v0, v3}, Ljava/io/PrintStream;->println(Z)V
    :e1
    .catch Ljava/util/regex/PatternSyntaxException; {:s1 .. :e1} :refused1
    :after1
    :s2
    const-string v2, "(a|aa)*c"
    invoke-virtual {v1, v2}, Ljava/lang/String;->split(Ljava/lang/String;)[Ljava/lang/String;
    :e2
    .catch Ljava/lang/IllegalArgumentException; {:s2 .. :e2} :refused2
    :after2
    const-string v2, "x1y22z 333,w"
    const-string v3, "[0-9]+"
    const-string v4, "-"
    invoke-virtual {v2, v3, v4}, Ljava/lang/String;->replaceAll(Ljava/lang/String;Ljava/lang/String;)Ljava/lang/String;
    move-result-object v3
    invoke-virtual {v0, v3}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    const-string v3, "[\\s,]+"
    invoke-virtual {v2, v3}, Ljava/lang/String;->split(Ljava/lang/String;)[Ljava/lang/String;
    move-result-object v3
    array-length v3, v3
    invoke-virtual {v0, v3}, Ljava/io/PrintStream;->println(I)V
    const-string v2, "a*a*a*a*a*a*a*a*b"
    invoke-virtual {v1, v2, v4}, Ljava/lang/String;->replaceAll(Ljava/lang/String;Ljava/lang/String;)Ljava/lang/String;
    move-result-object v1
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    return-void
    :refused1
    move-exception v2
    invoke-virtual {v2}, Ljava/lang/Throwable;->getMessage()Ljava/lang/String;
    move-result-object v2
    invoke-virtual {v0, v2}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    goto :after1
    :refused2
    move-exception v2
    invoke-virtual {v2}, Ljava/lang/Object;->getClass()Ljava/lang/Class;
    move-result-object v2
    invoke-virtual {v0, v2}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V
    goto :after2
.end method
