.class public LPoint;
.super Ljava/lang/Object;

.field final x:I
.field final y:I

.method public constructor <init>(II)V
    .registers 3
    invoke-direct {p0}, Ljava/lang/Object;-><init>()V
    iput p1, p0, LPoint;->x:I
    iput p2, p0, LPoint;->y:I
    return-void
.end method

.method public equals(Ljava/lang/Object;)Z
    .registers 5
    instance-of v0, p1, LPoint;
    if-eqz v0, :no
    check-cast p1, LPoint;
    iget v0, p0, LPoint;->x:I
    iget v1, p1, LPoint;->x:I
    if-ne v0, v1, :no
    iget v0, p0, LPoint;->y:I
    iget v1, p1, LPoint;->y:I
    if-ne v0, v1, :no
    const/4 v0, 1
    return v0
    :no
    const/4 v0, 0
    return v0
.end method

.method public hashCode()I
    .registers 4
    const/4 v0, 2
    new-array v0, v0, [Ljava/lang/Object;
    iget v1, p0, LPoint;->x:I
    invoke-static {v1}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v1
    const/4 v2, 0
    aput-object v1, v0, v2
    iget v1, p0, LPoint;->y:I
    invoke-static {v1}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v1
    const/4 v2, 1
    aput-object v1, v0, v2
    invoke-static {v0}, Ljava/util/Objects;->hash([Ljava/lang/Object;)I
    move-result v0
    return v0
.end method

.method public toString()Ljava/lang/String;
    .registers 5
    const-string v0, "(%d,%d)"
    const/4 v1, 2
    new-array v1, v1, [Ljava/lang/Object;
    iget v2, p0, LPoint;->x:I
    invoke-static {v2}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v2
    const/4 v3, 0
    aput-object v2, v1, v3
    iget v2, p0, LPoint;->y:I
    invoke-static {v2}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v2
    const/4 v3, 1
    aput-object v2, v1, v3
    invoke-static {v0, v1}, Ljava/lang/String;->format(Ljava/lang/String;[Ljava/lang/Object;)Ljava/lang/String;
    move-result-object v0
    return-object v0
.end method
