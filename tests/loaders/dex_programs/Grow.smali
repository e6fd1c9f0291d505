# keeps every string it makes in a HashMap: ends in OutOfMemoryError under run_main's heap limit
.class public LGrow;
.super Ljava/lang/Object;

.method public static main([Ljava/lang/String;)V
    .registers 6
    new-instance v0, Ljava/util/HashMap;
    invoke-direct {v0}, Ljava/util/HashMap;-><init>()V
    const/4 v1, 0
    const-string v2, "x"
    :loop
    const/16 v3, 2000
    invoke-virtual {v2, v3}, Ljava/lang/String;->repeat(I)Ljava/lang/String;
    move-result-object v3
    invoke-static {v1}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v4
    invoke-interface {v0, v4, v3}, Ljava/util/Map;->put(Ljava/lang/Object;Ljava/lang/Object;)Ljava/lang/Object;
    add-int/lit8 v1, v1, 1
    goto :loop
.end method
