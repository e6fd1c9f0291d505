.class public Lorg/cerebro/demo/Big;
.super Lorg/cerebro/demo/Demo;

.method public constructor <init>(I)V
    .locals 0
    invoke-direct {p0, p1}, Lorg/cerebro/demo/Demo;-><init>(I)V
    return-void
.end method

.method public score()I
    .locals 1
    iget v0, p0, Lorg/cerebro/demo/Demo;->value:I
    mul-int/lit8 v0, v0, 3
    return v0
.end method
