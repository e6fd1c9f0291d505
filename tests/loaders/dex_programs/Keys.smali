.class public LKeys;
.super Ljava/lang/Object;

.method static say(Ljava/lang/Object;)V
    .registers 2
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    invoke-virtual {v0, p0}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V
    return-void
.end method

.method public static main([Ljava/lang/String;)V
    .registers 10
    new-instance v0, Ljava/util/HashMap;
    invoke-direct {v0}, Ljava/util/HashMap;-><init>()V
    new-instance v1, Ljava/util/HashSet;
    invoke-direct {v1}, Ljava/util/HashSet;-><init>()V
    new-instance v2, Ljava/util/ArrayList;
    invoke-direct {v2}, Ljava/util/ArrayList;-><init>()V
    new-instance v9, Ljava/util/Random;
    const-wide/16 v3, 42
    invoke-direct {v9, v3, v4}, Ljava/util/Random;-><init>(J)V
    const/4 v3, 0
    :loop
    const/16 v4, 30
    if-ge v3, v4, :done
    new-instance v5, LPoint;
    const/4 v6, 5
    invoke-virtual {v9, v6}, Ljava/util/Random;->nextInt(I)I
    move-result v6
    const/16 v7, 7
    invoke-virtual {v9, v7}, Ljava/util/Random;->nextInt(I)I
    move-result v7
    add-int/lit8 v7, v7, -3
    invoke-direct {v5, v6, v7}, LPoint;-><init>(II)V
    invoke-static {v3}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v6
    invoke-interface {v0, v5, v6}, Ljava/util/Map;->put(Ljava/lang/Object;Ljava/lang/Object;)Ljava/lang/Object;
    invoke-interface {v1, v5}, Ljava/util/Set;->add(Ljava/lang/Object;)Z
    invoke-interface {v2, v5}, Ljava/util/List;->contains(Ljava/lang/Object;)Z
    move-result v6
    if-nez v6, :seen
    invoke-interface {v2, v5}, Ljava/util/List;->add(Ljava/lang/Object;)Z
    :seen
    add-int/lit8 v3, v3, 1
    goto :loop
    :done
    invoke-static {v0}, LKeys;->say(Ljava/lang/Object;)V
    invoke-static {v1}, LKeys;->say(Ljava/lang/Object;)V
    invoke-static {v2}, LKeys;->say(Ljava/lang/Object;)V
    new-instance v5, LPoint;
    const/4 v6, 1
    const/4 v7, 1
    invoke-direct {v5, v6, v7}, LPoint;-><init>(II)V
    invoke-interface {v0, v5}, Ljava/util/Map;->get(Ljava/lang/Object;)Ljava/lang/Object;
    move-result-object v6
    invoke-static {v6}, LKeys;->say(Ljava/lang/Object;)V
    invoke-interface {v2, v5}, Ljava/util/List;->indexOf(Ljava/lang/Object;)I
    move-result v6
    invoke-static {v6}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v6
    invoke-static {v6}, LKeys;->say(Ljava/lang/Object;)V
    invoke-virtual {v9}, Ljava/util/Random;->nextLong()J
    move-result-wide v6
    invoke-static {v6, v7}, Ljava/lang/Long;->valueOf(J)Ljava/lang/Long;
    move-result-object v6
    invoke-static {v6}, LKeys;->say(Ljava/lang/Object;)V
    invoke-virtual {v9}, Ljava/util/Random;->nextDouble()D
    move-result-wide v6
    invoke-static {v6, v7}, Ljava/lang/Double;->valueOf(D)Ljava/lang/Double;
    move-result-object v6
    invoke-static {v6}, LKeys;->say(Ljava/lang/Object;)V
    invoke-virtual {v9}, Ljava/util/Random;->nextInt()I
    move-result v6
    invoke-static {v6}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v6
    invoke-static {v6}, LKeys;->say(Ljava/lang/Object;)V
    const v6, 1000000
    invoke-virtual {v9, v6}, Ljava/util/Random;->nextInt(I)I
    move-result v6
    invoke-static {v6}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v6
    invoke-static {v6}, LKeys;->say(Ljava/lang/Object;)V
    return-void
.end method
