# an unmodifiable list, String.format with a Locale, printf (List.of cannot be tested here: enjarify
# turns a static interface call into a Methodref, which the JVM refuses)
.class public LMisc;
.super Ljava/lang/Object;

.method public static main([Ljava/lang/String;)V
    .registers 8
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    const-string v1, "b"
    const-string v2, "a"
    const-string v3, "c"
    const/4 v4, 3
    new-array v4, v4, [Ljava/lang/Object;
    const/4 v5, 0
    aput-object v1, v4, v5
    const/4 v5, 1
    aput-object v2, v4, v5
    const/4 v5, 2
    aput-object v3, v4, v5
    invoke-static {v4}, Ljava/util/Arrays;->asList([Ljava/lang/Object;)Ljava/util/List;
    move-result-object v4
    invoke-static {v4}, Ljava/util/Collections;->unmodifiableList(Ljava/util/List;)Ljava/util/List;
    move-result-object v4
    invoke-virtual {v0, v4}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V
    new-instance v5, Ljava/util/ArrayList;
    invoke-direct {v5, v4}, Ljava/util/ArrayList;-><init>(Ljava/util/Collection;)V
    invoke-static {v5}, Ljava/util/Collections;->sort(Ljava/util/List;)V
    invoke-virtual {v0, v5}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V
    :s
    invoke-interface {v4, v1}, Ljava/util/List;->add(Ljava/lang/Object;)Z
    :e
    .catch Ljava/lang/UnsupportedOperationException; {:s .. :e} :uoe
    :after
    sget-object v1, Ljava/util/Locale;->ROOT:Ljava/util/Locale;
    const-string v2, "%.2f|%5s|%-4d|%n"
    const/4 v3, 3
    new-array v3, v3, [Ljava/lang/Object;
    const-wide v4, 0x3ff0000000000000L
    invoke-static {v4, v5}, Ljava/lang/Double;->valueOf(D)Ljava/lang/Double;
    move-result-object v4
    const/4 v5, 0
    aput-object v4, v3, v5
    const-string v4, "xy"
    const/4 v5, 1
    aput-object v4, v3, v5
    const/4 v4, -7
    invoke-static {v4}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v4
    const/4 v5, 2
    aput-object v4, v3, v5
    invoke-static {v1, v2, v3}, Ljava/lang/String;->format(Ljava/util/Locale;Ljava/lang/String;[Ljava/lang/Object;)Ljava/lang/String;
    move-result-object v4
    invoke-virtual {v0, v4}, Ljava/io/PrintStream;->print(Ljava/lang/String;)V
    invoke-virtual {v0, v2, v3}, Ljava/io/PrintStream;->printf(Ljava/lang/String;[Ljava/lang/Object;)Ljava/io/PrintStream;
    return-void
    :uoe
    move-exception v6
    invoke-virtual {v0, v6}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V
    goto :after
.end method
