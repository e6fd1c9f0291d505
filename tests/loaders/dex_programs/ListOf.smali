# List.of with three elements, then an add: not JVM-compared (enjarify cannot translate the static
# interface call), checked against the JDK's documented behaviour in the test
.class public LListOf;
.super Ljava/lang/Object;

.method public static main([Ljava/lang/String;)V
    .registers 6
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    const-string v1, "b"
    const-string v2, "a"
    const-string v3, "c"
    invoke-static {v1, v2, v3}, Ljava/util/List;->of(Ljava/lang/Object;Ljava/lang/Object;Ljava/lang/Object;)Ljava/util/List;
    move-result-object v4
    invoke-virtual {v0, v4}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V
    invoke-interface {v4, v1}, Ljava/util/List;->add(Ljava/lang/Object;)Z
    return-void
.end method
