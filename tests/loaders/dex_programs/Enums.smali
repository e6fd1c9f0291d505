.class public LEnums;
.super Ljava/lang/Object;

.method public static main([Ljava/lang/String;)V
    .registers 8
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    invoke-static {}, LColor;->values()[LColor;
    move-result-object v1
    array-length v2, v1
    const/4 v3, 0
    :loop
    if-ge v3, v2, :done
    aget-object v4, v1, v3
    invoke-virtual {v0, v4}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V
    invoke-virtual {v4}, LColor;->ordinal()I
    move-result v5
    invoke-virtual {v0, v5}, Ljava/io/PrintStream;->println(I)V
    add-int/lit8 v3, v3, 1
    goto :loop
    :done
    const-string v4, "GREEN"
    invoke-static {v4}, LColor;->valueOf(Ljava/lang/String;)LColor;
    move-result-object v4
    invoke-virtual {v4}, LColor;->name()Ljava/lang/String;
    move-result-object v5
    invoke-virtual {v0, v5}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    sget-object v5, LColor;->BLUE:LColor;
    invoke-virtual {v4, v5}, LColor;->compareTo(Ljava/lang/Enum;)I
    move-result v6
    invoke-virtual {v0, v6}, Ljava/io/PrintStream;->println(I)V
    sget-object v5, LColor;->GREEN:LColor;
    invoke-virtual {v4, v5}, LColor;->equals(Ljava/lang/Object;)Z
    move-result v6
    invoke-virtual {v0, v6}, Ljava/io/PrintStream;->println(Z)V
    new-instance v5, Ljava/util/TreeMap;
    invoke-direct {v5}, Ljava/util/TreeMap;-><init>()V
    sget-object v6, LColor;->BLUE:LColor;
    invoke-interface {v5, v6, v6}, Ljava/util/Map;->put(Ljava/lang/Object;Ljava/lang/Object;)Ljava/lang/Object;
    sget-object v6, LColor;->RED:LColor;
    invoke-interface {v5, v6, v4}, Ljava/util/Map;->put(Ljava/lang/Object;Ljava/lang/Object;)Ljava/lang/Object;
    invoke-virtual {v0, v5}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V
    :s
    const-string v4, "PURPLE"
    invoke-static {v4}, LColor;->valueOf(Ljava/lang/String;)LColor;
    :e
    .catch Ljava/lang/IllegalArgumentException; {:s .. :e} :bad
    return-void
    :bad
    move-exception v4
    invoke-virtual {v0, v4}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V
    return-void
.end method
