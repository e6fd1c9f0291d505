# library calls whose sizes come from the program: each must be a Java exception, never host memory
.class public LLimits;
.super Ljava/lang/Object;

.method public static main([Ljava/lang/String;)V
    .registers 6
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    :s1
    const-string v1, "(unclosed"
    const-string v2, "x"
    invoke-virtual {v1, v2}, Ljava/lang/String;->split(Ljava/lang/String;)[Ljava/lang/String;
    invoke-virtual {v2, v1}, Ljava/lang/String;->matches(Ljava/lang/String;)Z
    :e1
    .catch Ljava/lang/IllegalArgumentException; {:s1 .. :e1} :bad_regex
    :after1
    const/4 v1, 5
    const/4 v2, 1
    invoke-static {v1, v2}, Ljava/lang/Integer;->toString(II)Ljava/lang/String;
    move-result-object v1
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    const-string v1, "%999999999d"
    const/4 v2, 1
    new-array v2, v2, [Ljava/lang/Object;
    const/4 v3, 0
    const/4 v4, 7
    invoke-static {v4}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v4
    aput-object v4, v2, v3
    :s2
    invoke-static {v1, v2}, Ljava/lang/String;->format(Ljava/lang/String;[Ljava/lang/Object;)Ljava/lang/String;
    :e2
    .catch Ljava/lang/OutOfMemoryError; {:s2 .. :e2} :oom
    :after2
    const-string v1, "ab"
    const v2, 0x7fffffff
    invoke-virtual {v1, v2}, Ljava/lang/String;->repeat(I)Ljava/lang/String;
    return-void
    :bad_regex
    move-exception v1
    invoke-virtual {v1}, Ljava/lang/Object;->getClass()Ljava/lang/Class;
    move-result-object v1
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V
    goto :after1
    :oom
    const-string v1, "format width: OutOfMemoryError"
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    goto :after2
.end method
