.class public Lorg/cerebro/demo/Hello;
.super Ljava/lang/Object;

.method public static main([Ljava/lang/String;)V
    .registers 6
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    const-string v1, "Hello from dex"
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    const/16 v2, 10
    invoke-static {v2}, Lorg/cerebro/demo/Hello;->fact(I)I
    move-result v3
    invoke-virtual {v0, v3}, Ljava/io/PrintStream;->println(I)V
    return-void
.end method

.method public static fact(I)I
    .registers 3
    const/4 v0, 1
    if-gt p0, v0, :rec
    return v0
    :rec
    add-int/lit8 v1, p0, -1
    invoke-static {v1}, Lorg/cerebro/demo/Hello;->fact(I)I
    move-result v1
    mul-int/2addr v1, p0
    return v1
.end method
